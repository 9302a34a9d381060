"""Conversions between the client's dataclasses and the generated protobuf messages.

Shared by the sync and the asyncio clients; nothing here does I/O.
"""
