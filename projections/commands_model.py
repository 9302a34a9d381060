"""The unified commands read model: every command with its status, and who is under which now.

A command is active from its unification until it is ended (the domain's rule: a planned end
that has passed does not end it). Each event replaces the command's row with its next state,
so the model equals one rebuilt from the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from projections.base import Projection, Recorded
from projections.store import ViewTransaction

NAME = "unified_commands"
EVENT_TYPES = ("PoliceCommandUnified", "UnifiedCommandEnded")
ACTIVE = "active"
ENDED = "ended"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Epoch microseconds (UTC) of an aware datetime: how the model stores times."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True)
class CommandView:
    """One unified command as the read model holds it."""

    command_id: UUID
    position: int
    """The log position of its unification (orders commands that start at the same time)."""
    version: int
    status: str
    municipality_codes: tuple[str, ...]
    police_zone_codes: tuple[str, ...]
    lead_authority: str
    reason: str
    starts_at: datetime
    planned_end_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    triggering_incident_ids: tuple[UUID, ...]
    recorded_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Cursor:
    """Where a page of the newest-first listing ended: the last command's sort key."""

    starts_at: int
    position: int


def next_command(before: CommandView | None, recorded: Recorded) -> CommandView | None:
    """The command's state after one of its events (None: unknown command, nothing to do)."""
    event = recorded.event
    if recorded.event_type == "PoliceCommandUnified":
        return CommandView(
            command_id=recorded.originator_id,
            position=recorded.position,
            version=recorded.originator_version,
            status=ACTIVE,
            municipality_codes=tuple(event.municipality_codes),
            police_zone_codes=tuple(event.police_zone_codes),
            lead_authority=event.lead_authority,
            reason=event.reason,
            starts_at=event.starts_at,
            planned_end_at=event.planned_end_at,
            ended_at=None,
            end_reason="",
            triggering_incident_ids=tuple(event.triggering_incident_ids),
            recorded_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if before is None:
        # Ended after a reset that skipped its unification: the model knows nothing of it.
        return None
    if recorded.event_type == "UnifiedCommandEnded":
        return replace(
            before,
            version=recorded.originator_version,
            status=ENDED,
            ended_at=event.occurred_at,
            end_reason=event.reason,
            updated_at=event.timestamp,
        )
    return before


class CommandsProjection(Projection):
    """Unified police commands: their history, and the command each municipality is under."""

    name: ClassVar[str] = NAME
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    tables: ClassVar[tuple[str, ...]] = ("proj_unified_commands", "proj_command_municipalities")
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS proj_unified_commands ("
        "command_id TEXT PRIMARY KEY, position BIGINT NOT NULL, version BIGINT NOT NULL, "
        "status TEXT NOT NULL, municipality_codes TEXT NOT NULL, "
        "police_zone_codes TEXT NOT NULL, lead_authority TEXT NOT NULL, reason TEXT NOT NULL, "
        "starts_at BIGINT NOT NULL, planned_end_at BIGINT, ended_at BIGINT, "
        "end_reason TEXT NOT NULL, triggering_incident_ids TEXT NOT NULL, "
        "recorded_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS proj_unified_commands_newest "
        "ON proj_unified_commands (starts_at, position)",
        "CREATE TABLE IF NOT EXISTS proj_command_municipalities ("
        "municipality_code TEXT NOT NULL, command_id TEXT NOT NULL, "
        "PRIMARY KEY (municipality_code, command_id))",
    )

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Fold the batch over the commands it touches, then write the ones that changed."""
        known = load_commands(
            tx, {e.originator_id for e in events if e.event_type != "PoliceCommandUnified"}
        )
        changed: dict[UUID, CommandView] = {}
        for recorded in events:
            before = changed.get(recorded.originator_id) or known.get(recorded.originator_id)
            after = next_command(before, recorded)
            if after is not None and after != before:
                changed[recorded.originator_id] = after
        write_commands(tx, changed.values())


_COLUMNS = (
    "c.command_id, c.position, c.version, c.status, c.municipality_codes, c.police_zone_codes, "
    "c.lead_authority, c.reason, c.starts_at, c.planned_end_at, c.ended_at, c.end_reason, "
    "c.triggering_incident_ids, c.recorded_at, c.updated_at"
)


def _row(command: CommandView) -> tuple[Any, ...]:
    return (
        str(command.command_id),
        command.position,
        command.version,
        command.status,
        json.dumps(list(command.municipality_codes)),
        json.dumps(list(command.police_zone_codes)),
        command.lead_authority,
        command.reason,
        to_micros(command.starts_at),
        None if command.planned_end_at is None else to_micros(command.planned_end_at),
        None if command.ended_at is None else to_micros(command.ended_at),
        command.end_reason,
        json.dumps([str(i) for i in command.triggering_incident_ids]),
        to_micros(command.recorded_at),
        to_micros(command.updated_at),
    )


def _view(row: Sequence[Any]) -> CommandView:
    return CommandView(
        command_id=UUID(row[0]),
        position=int(row[1]),
        version=int(row[2]),
        status=row[3],
        municipality_codes=tuple(json.loads(row[4])),
        police_zone_codes=tuple(json.loads(row[5])),
        lead_authority=row[6],
        reason=row[7],
        starts_at=from_micros(int(row[8])),
        planned_end_at=None if row[9] is None else from_micros(int(row[9])),
        ended_at=None if row[10] is None else from_micros(int(row[10])),
        end_reason=row[11],
        triggering_incident_ids=tuple(UUID(i) for i in json.loads(row[12])),
        recorded_at=from_micros(int(row[13])),
        updated_at=from_micros(int(row[14])),
    )


def load_commands(tx: ViewTransaction, command_ids: Iterable[UUID]) -> dict[UUID, CommandView]:
    """The stored state of the given commands, where known."""
    ids = [str(i) for i in command_ids]
    found: dict[UUID, CommandView] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        statement = (
            f"SELECT {_COLUMNS} FROM proj_unified_commands c "  # noqa: S608 - own columns
            f"WHERE c.command_id IN ({','.join('?' * len(chunk))})"
        )
        for row in tx.fetchall(statement, chunk):
            view = _view(row)
            found[view.command_id] = view
    return found


def write_commands(tx: ViewTransaction, commands: Iterable[CommandView]) -> None:
    """Insert or replace commands, and record the municipalities each one covers."""
    rows = [_row(command) for command in commands]
    tx.executemany(
        "INSERT INTO proj_unified_commands VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (command_id) DO UPDATE SET "
        "version = excluded.version, status = excluded.status, "
        "ended_at = excluded.ended_at, end_reason = excluded.end_reason, "
        "updated_at = excluded.updated_at",
        rows,
    )
    tx.executemany(
        "INSERT INTO proj_command_municipalities VALUES (?,?) "
        "ON CONFLICT (municipality_code, command_id) DO NOTHING",
        [(code, row[0]) for row in rows for code in json.loads(row[4])],
    )


def list_commands(
    tx: ViewTransaction,
    *,
    municipality_codes: Sequence[str] = (),
    active_only: bool = False,
    active_from: datetime | None = None,
    active_to: datetime | None = None,
    after: Cursor | None = None,
    limit: int = 50,
) -> list[CommandView]:
    """Commands newest first (starts_at, then unification position), after `after`."""
    statement = f"SELECT {_COLUMNS} FROM proj_unified_commands c WHERE 1 = 1"  # noqa: S608
    params: list[Any] = []
    if municipality_codes:
        statement += (
            " AND EXISTS (SELECT 1 FROM proj_command_municipalities m "  # noqa: S608
            "WHERE m.command_id = c.command_id AND m.municipality_code IN "
            f"({','.join('?' * len(municipality_codes))}))"
        )
        params.extend(municipality_codes)
    if active_only:
        statement += " AND c.status = ?"
        params.append(ACTIVE)
    if active_to is not None:
        statement += " AND c.starts_at < ?"
        params.append(to_micros(active_to))
    if active_from is not None:
        statement += " AND (c.ended_at IS NULL OR c.ended_at > ?)"
        params.append(to_micros(active_from))
    if after is not None:
        statement += " AND (c.starts_at < ? OR (c.starts_at = ? AND c.position < ?))"
        params.extend([after.starts_at, after.starts_at, after.position])
    statement += " ORDER BY c.starts_at DESC, c.position DESC LIMIT ?"
    params.append(limit)
    return [_view(row) for row in tx.fetchall(statement, params)]


def cursor_after(command: CommandView) -> Cursor:
    """The cursor that continues a listing after `command`."""
    return Cursor(starts_at=to_micros(command.starts_at), position=command.position)


def active_commands(
    tx: ViewTransaction, municipality_codes: Sequence[str] = ()
) -> dict[str, CommandView]:
    """The active command of each municipality under one (of the given ones, if any)."""
    statement = (
        f"SELECT m.municipality_code, {_COLUMNS} FROM proj_command_municipalities m "  # noqa: S608
        "JOIN proj_unified_commands c ON c.command_id = m.command_id WHERE c.status = ?"
    )
    params: list[Any] = [ACTIVE]
    if municipality_codes:
        statement += f" AND m.municipality_code IN ({','.join('?' * len(municipality_codes))})"
        params.extend(municipality_codes)
    # The domain never lets two active commands share a municipality; were it to happen, the
    # newest one is shown.
    statement += " ORDER BY m.municipality_code, c.starts_at, c.position"
    return {row[0]: _view(row[1:]) for row in tx.fetchall(statement, params)}
