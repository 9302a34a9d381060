"""The shape every write and read RPC shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from uuid import UUID

import grpc
from incident_registry_client.proto.incidents.v1 import common_pb2, events_pb2

from service.api.envelopes import envelope
from service.api.fields import FieldReader
from service.api.requests import write_context
from service.app.commands import Command
from service.app.results import RecordedEvent, WriteContext, WriteResult
from service.security.auth import call_identity
from service.security.roles import SEES_ACTORS

C = TypeVar("C", bound=Command)
R = TypeVar("R")


_call_headers: ContextVar[dict[str, str] | None] = ContextVar("call_headers", default=None)


def headers(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    """Return the call's text metadata as a dict (read once per call, then remembered)."""
    known = _call_headers.get()
    if known is None:
        known = {
            key: value
            for key, value in (context.invocation_metadata() or ())
            if isinstance(value, str)
        }
        # Each call runs in its own task, hence its own context: this never leaks across calls.
        _call_headers.set(known)
    return known


async def execute_write(
    request: R,
    context: grpc.aio.ServicerContext[Any, Any],
    convert: Callable[[R, FieldReader], C],
    run: Callable[[C, WriteContext], Awaitable[WriteResult]],
) -> common_pb2.WriteResult:
    """Validate and convert a write request, run it, and return its WriteResult message."""
    reader = FieldReader()
    write = write_context(request, headers(context), reader)
    command = convert(request, reader)
    reader.raise_if_any()
    result = await run(command, write)
    return common_pb2.WriteResult(
        aggregate_id=str(result.aggregate_id),
        version=result.version,
        position=result.position,
        replayed=result.replayed,
    )


def read_id(value: str, field: str) -> UUID:
    """Parse the id of a read request, raising INVALID_ARGUMENT when malformed."""
    reader = FieldReader()
    parsed = reader.uuid(value, field)
    reader.raise_if_any()
    return parsed


def history(events: list[RecordedEvent]) -> list[events_pb2.EventEnvelope]:
    """Return the envelopes of an aggregate's history.

    A caller authenticated with none of the roles in `SEES_ACTORS` (an analyst) gets them
    without `metadata.actor`: who recorded an event is personal data about staff.
    """
    envelopes = [envelope(event) for event in events]
    identity = call_identity()
    if identity is not None and not identity.roles & SEES_ACTORS:
        for item in envelopes:
            item.metadata.actor = ""
    return envelopes
