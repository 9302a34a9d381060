"""The export file format: one exported event per line of JSON (JSONL).

    {"position": 1, "stream_id": "…", "stream_type": "incident", "stream_version": 1,
     "event_type": "ShootingReported", "recorded_at": "2025-02-05T06:12:03.120000+00:00",
     "tags": ["municipality:21001"], "state_json": "{…}"}

`state_json` is kept as the exact string the registry exported (an import compares it with
what is already stored), so a file can be imported into any registry, on any store.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from incident_registry_client import ExportedEvent

_TAIL_CHUNK = 64 * 1024


class BadLineError(ValueError):
    """Raised when a line of an export file is not an exported event."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def encode(event: ExportedEvent) -> bytes:
    """One line (with its newline) for an exported event."""
    record = {
        "position": event.position,
        "stream_id": str(event.stream_id),
        "stream_type": event.stream_type,
        "stream_version": event.stream_version,
        "event_type": event.event_type,
        "recorded_at": event.recorded_at.isoformat() if event.recorded_at else None,
        "tags": list(event.tags),
        "state_json": event.state_json,
    }
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def decode(raw: bytes | str, line: int) -> ExportedEvent:
    """The exported event of one line; BadLineError says what is wrong with it."""
    try:
        record: Any = json.loads(raw)
    except ValueError as err:
        raise BadLineError(line, f"not JSON ({err})") from None
    if not isinstance(record, dict):
        raise BadLineError(line, "not a JSON object")
    try:
        recorded = record.get("recorded_at")
        event = ExportedEvent(
            position=int(record["position"]),
            stream_id=UUID(record["stream_id"]),
            stream_type=str(record["stream_type"]),
            stream_version=int(record["stream_version"]),
            event_type=str(record["event_type"]),
            recorded_at=datetime.fromisoformat(recorded) if recorded else None,
            tags=tuple(str(tag) for tag in record.get("tags", ())),
            state_json=record["state_json"],
        )
    except KeyError as err:
        raise BadLineError(line, f"no {err.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise BadLineError(line, str(err)) from None
    if not isinstance(event.state_json, str):
        raise BadLineError(line, "state_json is not a string")
    return event


def last_position(path: Path, *, repair: bool) -> int:
    """The position of the last complete line of an export file (0 when it has none).

    A last line without its newline is what a crash mid-write leaves: with `repair` the file
    is truncated to end after the last complete line.
    """
    size = path.stat().st_size
    with path.open("r+b") if repair else path.open("rb") as handle:
        end = _after_last_newline(handle, size)
        if end < size and repair:
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())
        if end == 0:
            return 0
        start = _after_last_newline(handle, end - 1)
        handle.seek(start)
        last = handle.read(end - start)
    return decode(last, 0).position


def _after_last_newline(handle: BinaryIO, offset: int) -> int:
    """The offset just after the last newline before `offset` (0 when there is none)."""
    while offset > 0:
        step = min(_TAIL_CHUNK, offset)
        handle.seek(offset - step)
        newline = handle.read(step).rfind(b"\n")
        if newline >= 0:
            return offset - step + newline + 1
        offset -= step
    return 0
