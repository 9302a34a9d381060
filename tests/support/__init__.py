"""Shared test support: a real server on a free port, and request builders."""
