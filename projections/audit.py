"""The audit read model's rows: who recorded each event of the log, when, in which request.

Each event carries its metadata (actor, request id, correlation id) and the time the registry
recorded it. They are read through `Recorded.payload()` — the stored attributes as plain JSON,
decrypted where the log is encrypted at rest — without decoding the whole domain event; only
an event stored by an older version of its class is decoded (so that its upcasters run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from projections.base import Recorded
from service.domain.events import EVENT_TYPES as ALL_EVENT_TYPES
from service.domain.events import STREAM_TYPE_OF_EVENT
from service.store.transcoding import stored_time

NAME = "audit"
"""The projection's name (projection_state, ProjectionAdminService)."""

EVENT_TYPES: tuple[str, ...] = tuple(sorted(ALL_EVENT_TYPES))
"""Every event type of the log: the audit trail has one entry per event."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class AuditRow:
    """One entry of the audit trail: an event, who recorded it, when and in which request."""

    position: int
    recorded_at: datetime
    actor: str
    event_type: str
    stream_id: UUID
    stream_type: str
    stream_version: int
    request_id: str
    correlation_id: str


def micros(moment: datetime) -> int:
    """Microseconds since the epoch of a datetime (a naive one is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def moment(value: int) -> datetime:
    """The UTC datetime of a number of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def audit_row(recorded: Recorded) -> AuditRow:
    """The audit entry of one event of the log."""
    payload = recorded.payload()
    metadata: dict[str, Any]
    if payload is not None:
        metadata = payload.get("metadata") or {}
        recorded_at = stored_time(payload["timestamp"])
    else:
        event = recorded.event
        metadata = dict(getattr(event, "metadata", None) or {})
        recorded_at = event.timestamp
    return AuditRow(
        position=recorded.position,
        recorded_at=recorded_at,
        actor=str(metadata.get("actor", "")),
        event_type=recorded.event_type,
        stream_id=recorded.originator_id,
        stream_type=STREAM_TYPE_OF_EVENT.get(recorded.event_type, ""),
        stream_version=recorded.originator_version,
        request_id=str(metadata.get("request_id", "")),
        correlation_id=str(metadata.get("correlation_id", "")),
    )
