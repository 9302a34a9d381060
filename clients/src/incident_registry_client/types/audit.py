"""The audit trail: who recorded each event of the log, when and in which request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class AuditEntry:
    """One event of the log as the audit read model holds it.

    `actor` is the authenticated identity that recorded the event when the registry
    authenticates its callers, else the x-actor its client sent ("" when none was sent);
    `correlation_id` is the request id when no x-correlation-id was sent.
    """

    position: int
    recorded_at: datetime | None
    actor: str
    event_type: str
    stream_id: UUID
    stream_type: str
    stream_version: int
    request_id: str
    correlation_id: str
