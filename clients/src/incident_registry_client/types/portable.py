"""Exported events: the log in a store-independent form, to copy it between registries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class ExportedEvent:
    """One event of the log as exported, and as imported into another registry.

    `state_json` holds every stored attribute (business and recorded time, metadata,
    payload) in the registry's JSON transcoding; `position` is where the event was in the
    log it came from (an import ignores it).
    """

    position: int
    stream_id: UUID
    stream_type: str
    stream_version: int
    event_type: str
    recorded_at: datetime | None
    tags: tuple[str, ...]
    state_json: str


@dataclass(frozen=True)
class ExportFinished:
    """The end of an export: every event up to `position` was sent, `exported` in all."""

    position: int
    exported: int


ExportItem = ExportedEvent | ExportFinished
"""What an export yields: events one by one, then ExportFinished."""


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: events appended, events already present, their positions."""

    imported: int
    skipped: int
    first_position: int
    last_position: int
