"""`incidents verify`: read the whole log and check that it is sound.

Every event must decode (its state is a JSON object, its type one the client's generated
code knows), each stream's versions run 1, 2, 3… without gaps and keep one stream type, and
positions strictly increase.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from incident_registry_client import ExportedEvent
from incident_registry_client.proto.incidents.v1 import events_pb2

KNOWN_EVENT_TYPES = frozenset(
    f.message_type.name
    for f in events_pb2.EventEnvelope.DESCRIPTOR.oneofs_by_name["payload"].fields
    if f.message_type is not None
)
"""The event types of the payload oneof of incidents.v1.EventEnvelope."""

KEPT_PROBLEMS = 50
"""Problems listed in full; the rest are only counted."""


@dataclass
class Verification:
    """The running checks over a log read in order, and what they found."""

    partial: bool = False
    """The log was read from a later position: a stream may start above version 1."""
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    first_position: int = 0
    last_position: int = 0
    _streams: dict[UUID, tuple[int, str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether no check failed."""
        return self.problem_count == 0

    @property
    def streams(self) -> int:
        """The streams seen."""
        return len(self._streams)

    def problem(self, where: str, what: str) -> None:
        """Record a failed check."""
        self.problem_count += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(f"{where}: {what}")

    def check(self, event: ExportedEvent, where: str = "") -> None:
        """Check one event, the next one of the log."""
        where = where or f"position {event.position}"
        self.events += 1
        self.by_type[event.event_type] += 1
        if event.position <= self.last_position:
            self.problem(where, f"position {event.position} after {self.last_position}")
        self.first_position = self.first_position or event.position
        self.last_position = max(self.last_position, event.position)
        if event.event_type not in KNOWN_EVENT_TYPES:
            self.problem(where, f"unknown event type {event.event_type!r}")
        try:
            state = json.loads(event.state_json)
        except ValueError as err:
            self.problem(where, f"the state is not JSON ({err})")
        else:
            if not isinstance(state, dict):
                self.problem(where, "the state is not a JSON object")
        self._check_version(event, where)

    def _check_version(self, event: ExportedEvent, where: str) -> None:
        seen = self._streams.get(event.stream_id)
        if seen is None:
            if event.stream_version != 1 and not self.partial:
                self.problem(
                    where,
                    f"stream {event.stream_id} starts at version {event.stream_version}, not 1",
                )
        else:
            version, stream_type = seen
            if event.stream_version != version + 1:
                self.problem(
                    where,
                    f"stream {event.stream_id}: version {event.stream_version} follows {version}",
                )
            if event.stream_type != stream_type:
                self.problem(
                    where,
                    f"stream {event.stream_id} is {stream_type!r}, not {event.stream_type!r}",
                )
        self._streams[event.stream_id] = (event.stream_version, event.stream_type)

    def summary(self) -> dict[str, object]:
        """The result as JSON-ready data."""
        return {
            "passed": self.passed,
            "events": self.events,
            "streams": self.streams,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "by_event_type": dict(sorted(self.by_type.items())),
            "problem_count": self.problem_count,
            "problems": self.problems,
        }
