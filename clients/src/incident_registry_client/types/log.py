"""The event log: reads, filters, and the markers of a subscription."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from incident_registry_client.types.events import RecordedEvent


class ReadDirection(Enum):
    """Which way a read goes."""

    FORWARDS = "forwards"
    BACKWARDS = "backwards"


class PayloadFormat(Enum):
    """Which forms of the payload each event carries."""

    BOTH = "both"
    TYPED = "typed"
    JSON = "json"


@dataclass(frozen=True, kw_only=True)
class EventFilter:
    """Selects events: every kind given must match, and any value within a kind.

    Tags are "municipality:<code>", "police_zone:<code>" or "gang:<id>". An empty filter
    selects every event.
    """

    event_types: Sequence[str] = field(default=())
    stream_types: Sequence[str] = field(default=())
    tags: Sequence[str] = field(default=())

    def __post_init__(self) -> None:
        for name in ("event_types", "stream_types", "tags"):
            value = getattr(self, name)
            if isinstance(value, str):
                msg = f"{name} is a sequence of strings, not one string"
                raise TypeError(msg)
            object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class StreamWindow:
    """A window of one aggregate's events; `next_version` continues it (0 at the end)."""

    events: tuple[RecordedEvent, ...]
    next_version: int
    stream_version: int


@dataclass(frozen=True)
class LogPage:
    """A page of the global log; `next_position` continues it (0 at the end of the log)."""

    events: tuple[RecordedEvent, ...]
    next_position: int
    head_position: int


@dataclass(frozen=True)
class LogHead:
    """The last position of the log (0 when empty) and when it was recorded."""

    position: int
    recorded_at: datetime | None


@dataclass(frozen=True)
class CaughtUp:
    """The subscription has every matching event up to the head `position`."""

    position: int


@dataclass(frozen=True)
class FellBehind:
    """The log grew faster than the subscriber read; catch-up resumes."""

    position: int
    head_position: int


@dataclass(frozen=True)
class Checkpoint:
    """Every matching event up to `position` was sent: a position to resume after."""

    position: int


SubscriptionItem = RecordedEvent | CaughtUp | FellBehind | Checkpoint
"""What a subscription yields: events one by one, and progress markers."""
