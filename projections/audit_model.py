"""The audit read model: one row per event of the log, its table and indexes, and its query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from projections.audit import EVENT_TYPES, NAME, AuditRow, audit_row, micros, moment
from projections.base import Projection, Recorded
from projections.store import ViewTransaction

_COLUMNS = (
    "position, recorded_at, actor, event_type, stream_id, stream_type, stream_version, "
    "request_id, correlation_id"
)


@dataclass(frozen=True)
class AuditSelection:
    """Which entries to list: every filter given must match (an empty one matches all)."""

    actor: str = ""
    """Exactly this actor."""
    event_types: tuple[str, ...] = ()
    """Any of these event types."""
    stream_id: UUID | None = None
    """The events of this aggregate."""
    recorded_from: datetime | None = None
    """Recorded at or after (inclusive)."""
    recorded_to: datetime | None = None
    """Recorded before (exclusive)."""


class AuditProjection(Projection):
    """Who recorded each event of the log, when, and in which request (the audit trail)."""

    name: ClassVar[str] = NAME
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    tables: ClassVar[tuple[str, ...]] = ("proj_audit_entries",)
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS proj_audit_entries ("
        "position BIGINT PRIMARY KEY, recorded_at BIGINT NOT NULL, actor TEXT NOT NULL, "
        "event_type TEXT NOT NULL, stream_id TEXT NOT NULL, stream_type TEXT NOT NULL, "
        "stream_version BIGINT NOT NULL, request_id TEXT NOT NULL, "
        "correlation_id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS proj_audit_by_actor ON proj_audit_entries (actor, position)",
        "CREATE INDEX IF NOT EXISTS proj_audit_by_time ON proj_audit_entries (recorded_at)",
        "CREATE INDEX IF NOT EXISTS proj_audit_by_type "
        "ON proj_audit_entries (event_type, position)",
        "CREATE INDEX IF NOT EXISTS proj_audit_by_stream "
        "ON proj_audit_entries (stream_id, position)",
    )

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Insert one row per event (a position applied twice would violate the key)."""
        tx.executemany(
            f"INSERT INTO proj_audit_entries ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
            [_values(audit_row(recorded)) for recorded in events],
        )


def _values(row: AuditRow) -> tuple[Any, ...]:
    return (
        row.position,
        micros(row.recorded_at),
        row.actor,
        row.event_type,
        str(row.stream_id),
        row.stream_type,
        row.stream_version,
        row.request_id,
        row.correlation_id,
    )


def query_audit(
    tx: ViewTransaction,
    selection: AuditSelection,
    *,
    before: int | None = None,
    limit: int = 100,
) -> list[AuditRow]:
    """The entries matching `selection`, newest (highest position) first.

    `before` is the position of the last entry of the previous page (exclusive).
    """
    statement = f"SELECT {_COLUMNS} FROM proj_audit_entries WHERE 1 = 1"  # noqa: S608
    params: list[Any] = []
    if selection.actor:
        statement += " AND actor = ?"
        params.append(selection.actor)
    if selection.event_types:
        types = sorted(set(selection.event_types))
        statement += f" AND event_type IN ({','.join('?' * len(types))})"
        params.extend(types)
    if selection.stream_id is not None:
        statement += " AND stream_id = ?"
        params.append(str(selection.stream_id))
    if selection.recorded_from is not None:
        statement += " AND recorded_at >= ?"
        params.append(micros(selection.recorded_from))
    if selection.recorded_to is not None:
        statement += " AND recorded_at < ?"
        params.append(micros(selection.recorded_to))
    if before is not None:
        statement += " AND position < ?"
        params.append(before)
    statement += " ORDER BY position DESC LIMIT ?"
    params.append(limit)
    return [
        AuditRow(
            position=int(row[0]),
            recorded_at=moment(int(row[1])),
            actor=row[2],
            event_type=row[3],
            stream_id=UUID(row[4]),
            stream_type=row[5],
            stream_version=int(row[6]),
            request_id=row[7],
            correlation_id=row[8],
        )
        for row in tx.fetchall(statement, params)
    ]
