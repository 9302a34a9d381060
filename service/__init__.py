"""Incident Registry service: domain, store and gRPC API."""
