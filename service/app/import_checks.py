"""The checks of imported events that need no store: type, stream type, version, state, tags.

`check_events` is a plain function of plain values, so that a batch can be checked in worker
processes (see service/app/importing.py): decoding an event's state is most of an import's
work. `BatchChecks` waits for a batch's verdict, wherever it was reached.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import CanInitAggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from service.app.batches import listed
from service.app.event_schema import schema_of
from service.domain.errors import FieldViolation, InvalidArgumentError
from service.domain.events import EVENT_TYPES, STREAM_TYPE_OF_EVENT, STREAM_TYPES
from service.store.cipher import is_encrypted, key_id_of
from service.store.transcoding import RegistryMapper, registry_mapper

if TYPE_CHECKING:
    from service.app.exporting import PortableEvent

Row = tuple[str, str, bytes, int, bytes, int | None, tuple[str, ...]]
"""An event to check: event type, stream type, stream id (16 bytes), version, state,
recorded_at in microseconds since the epoch (None: not given), and tags. Plain values pickle
several times faster than UUIDs and datetimes."""

Problem = tuple[int, str, str]
"""A violation: the index of the event in its batch, the field, what is wrong."""

MAX_ERROR_TEXT = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@functools.cache
def _plain_mapper() -> RegistryMapper:
    """Decodes states as exported: the registry's JSON transcoding, without cipher."""
    return registry_mapper()


@functools.cache
def _creators() -> dict[str, str]:
    """The topic of the aggregate each creating event type starts (e.g. ShootingReported)."""
    return {
        name: get_topic(STREAM_TYPES[STREAM_TYPE_OF_EVENT[name]])
        for name, cls in EVENT_TYPES.items()
        if issubclass(cls, CanInitAggregate)
    }


def check_events(
    rows: Sequence[Row], municipalities: frozenset[str], offset: int = 0
) -> list[Problem]:
    """Check events numbered from `offset`; return every problem found (none: all valid).

    Each event must be of a known type in a stream of that type's kind, at version 1 exactly
    when it creates its aggregate, and its state must decode through the mapper into an
    instance of its class that has exactly the class's attributes, each of its type — and,
    for a creating event, that names its stream's aggregate class. Its tags must be
    `municipality:<code>` of `municipalities` or `gang:<UUID>`, each once.
    """
    problems: list[Problem] = []
    for index, row in enumerate(rows, start=offset):
        problems.extend(_problems(index, row))
        problems.extend(_tag_problems(index, row[-1], municipalities))
    return problems


def _tag_problems(
    index: int, tags: tuple[str, ...], municipalities: frozenset[str]
) -> list[Problem]:
    found = []
    for number, tag in enumerate(tags):
        problem = _tag_problem(tag, municipalities)
        if not problem and tag in tags[:number]:
            problem = "is given twice"
        if problem:
            found.append((index, f"tags[{number}]", problem))
    return found


def _tag_problem(tag: str, municipalities: frozenset[str]) -> str:
    kind, _, value = tag.partition(":")
    if kind == "municipality" and value:
        known = value in municipalities
        return "" if known else f"unknown municipality {value[:64]!r} in the area catalog"
    if kind == "gang" and value:
        try:
            canonical = str(UUID(value)) == value
        except ValueError:
            canonical = False
        return "" if canonical else f"gang id must be a UUID in canonical form, not {value[:64]!r}"
    return "must be municipality:<code> or gang:<id>"


def decode(event_type: str, stream_id: Any, version: int, state: bytes) -> Any:
    """The domain event of an exported state (its event type must be known)."""
    stored = StoredEvent(stream_id, version, get_topic(EVENT_TYPES[event_type]), state)
    return _plain_mapper().to_domain_event(stored)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // _MICROSECOND


def warm_up() -> None:
    """Build what checking needs (a worker process does this once, when it starts)."""
    _plain_mapper()
    _creators()
    for cls in EVENT_TYPES.values():
        schema_of(cls)


def _problems(index: int, row: Row) -> list[Problem]:
    event_type, stream_type, stream_bytes, version, state, recorded_at, _ = row
    stream_id = UUID(bytes=stream_bytes)
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        return [(index, "event_type", f"unknown event type {event_type!r}; one of {known}")]
    found: list[Problem] = []
    expected_stream = STREAM_TYPE_OF_EVENT[event_type]
    if stream_type != expected_stream:
        msg = f"must be {expected_stream!r}: {event_type} is an event of {expected_stream} streams"
        found.append((index, "stream_type", msg))
    creator = _creators().get(event_type)
    if creator is not None and version != 1:
        found.append((index, "stream_version", f"must be 1: {event_type} starts a stream"))
    elif creator is None and version < 2:
        msg = f"must be at least 2: {event_type} follows the event that starts its stream"
        found.append((index, "stream_version", msg))
    if is_encrypted(state):
        text = (
            "is encrypted at rest (key id "
            f"{key_id_of(state)!r}): import an export, whose states are plaintext JSON"
        )
        return [*found, (index, "state_json", text[:MAX_ERROR_TEXT])]
    try:
        event = decode(event_type, stream_id, version, state)
    except Exception as err:  # anything the mapper raises means the state is not valid
        text = f"does not decode as a {event_type}: {err}"
        return [*found, (index, "state_json", text[:MAX_ERROR_TEXT])]
    problem = schema_of(cls).problem(event)
    if problem is None and b'"class_version"' in state:
        # Older versions are upcast when decoded; a newer one is not understood here. (An
        # imported state is plaintext JSON, never encrypted: that was refused above.)
        stored_version = json.loads(state).get("class_version", 1)
        current = getattr(cls, "class_version", 1)
        if type(stored_version) is not int or stored_version > current:
            problem = f"class_version must be at most {current}, not {stored_version!r}"
    if problem is None and creator is not None and event.originator_topic != creator:
        problem = f"originator_topic must be {creator!r}"
    if problem is not None:
        found.append((index, "state_json", f"is not a valid {event_type}: {problem}"))
    elif recorded_at is not None and recorded_at != micros(event.timestamp):
        msg = f"differs from the state's timestamp {event.timestamp.isoformat()}"
        found.append((index, "recorded_at", msg))
    return found


class BatchChecks:
    """The checks of one batch, running in worker processes (or, without them, run here on
    the first wait), and their verdict once known."""

    def __init__(
        self,
        events: Sequence[PortableEvent],
        futures: list[Future[list[Problem]]],
        municipalities: frozenset[str],
        on_broken_pool: Callable[[], None],
    ) -> None:
        self._events = events
        self._futures = futures
        self._municipalities = municipalities
        self._on_broken_pool = on_broken_pool
        self._found: list[FieldViolation] | None = None

    @property
    def pooled(self) -> bool:
        """Whether the checks run in worker processes."""
        return bool(self._futures)

    def wait(self) -> None:
        """Wait for the verdict; raise InvalidArgumentError naming every invalid field."""
        if self._found is None:
            self._found = self._verdict()
        if self._found:
            raise InvalidArgumentError(listed(self._found, "events"))

    def _verdict(self) -> list[FieldViolation]:
        problems: list[Problem] = []
        try:
            for future in self._futures:
                problems.extend(future.result())
        except BrokenProcessPool:
            # A worker died (killed, out of memory): check here; a new pool starts next time.
            self._on_broken_pool()
            self._futures = []
        if not self._futures:
            problems = check_events(rows_of(self._events), self._municipalities)
        return [
            FieldViolation(f"events[{index}].{field}", description)
            for index, field, description in sorted(problems, key=lambda p: p[0])
        ]


def rows_of(events: Sequence[PortableEvent]) -> list[Row]:
    """The events as plain values, which pickle several times faster than UUIDs and times."""
    return [
        (
            e.event_type,
            e.stream_type,
            e.stream_id.bytes,
            e.stream_version,
            e.state,
            None if e.recorded_at is None else micros(e.recorded_at),
            e.tags,
        )
        for e in events
    ]
