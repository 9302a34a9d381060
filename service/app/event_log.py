"""The event log: paged reads of streams and of the whole log, and live subscriptions."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification

from service.app.head_watcher import HeadWatcher
from service.app.personal_data import PersonalData
from service.app.results import RecordedEvent
from service.app.validation import Violations
from service.areas import AreaCatalog
from service.domain.errors import NotFoundError, OutOfRangeError, StoreUnavailableError
from service.domain.events import EVENT_TYPES, STREAM_TYPES, topics_for
from service.store.base import BackendUnavailableError, EventStoreBackend, LogPage

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGE_SIZE = 500
_TAG = re.compile(r"^(municipality|police_zone|gang):(.+)$")


@dataclass(frozen=True)
class LogFilter:
    """A compiled filter: stored topics and tags (empty means any)."""

    topics: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamWindow:
    """Events of one stream, and where to continue."""

    events: list[RecordedEvent]
    next_version: int
    stream_version: int


@dataclass(frozen=True)
class LogWindow:
    """Events of the global log, and where to continue."""

    events: list[RecordedEvent]
    next_position: int
    head: int


@dataclass(frozen=True)
class EventsReached:
    """The next matching events of a subscription."""

    events: list[RecordedEvent]


@dataclass(frozen=True)
class CaughtUp:
    """The subscription has every matching event up to `position`, the head."""

    position: int


@dataclass(frozen=True)
class FellBehind:
    """The log grew faster than the subscriber read."""

    position: int
    head: int


@dataclass(frozen=True)
class Checkpoint:
    """Every matching event up to `position` has been sent."""

    position: int


FollowItem = EventsReached | CaughtUp | FellBehind | Checkpoint


@dataclass(frozen=True)
class FollowSettings:
    """Tuning of subscriptions."""

    page_size: int = PAGE_SIZE
    fell_behind_lag: int = 10_000
    checkpoint_seconds: float = 1.0
    checkpoint_skipped: int = 1_000
    idle_wait_seconds: float = 5.0


def continuation(events: Sequence[RecordedEvent], head: int, backwards: bool, limit: int) -> int:
    """Where a read of the global log continues (exclusive), or 0 at the end of the log."""
    if len(events) < limit or not events:
        return 0
    last = events[-1].position
    at_end = last <= 1 if backwards else last >= head
    return 0 if at_end else last


def limit_of(value: int, v: Violations, field: str = "limit") -> int:
    """A page size: 0 means the default; at most MAX_LIMIT."""
    v.check(0 <= value <= MAX_LIMIT, field, f"must be from 1 to {MAX_LIMIT} (0: default)")
    return value or DEFAULT_LIMIT


class EventLog:
    """Reads and follows the log; decoding runs on the read threads, not the event loop."""

    def __init__(
        self,
        backend: EventStoreBackend,
        mapper: Mapper[Any],
        catalog: AreaCatalog,
        reads: Executor,
        watcher: HeadWatcher,
        *,
        settings: FollowSettings | None = None,
        personal_data: PersonalData,
    ) -> None:
        self._backend = backend
        self._personal_data = personal_data
        self._mapper = mapper
        self._catalog = catalog
        self._reads = reads
        self._watcher = watcher
        self._settings = settings or FollowSettings()
        self._stopping = False
        self.subscribers = 0

    def stop_following(self) -> None:
        """End every subscription promptly (UNAVAILABLE: resume after the last position)."""
        self._stopping = True
        self._watcher.wake_all()

    def compile_filter(
        self,
        event_types: Sequence[str],
        stream_types: Sequence[str],
        tags: Sequence[str],
        v: Violations,
    ) -> LogFilter:
        """Check and compile a filter; unknown names are recorded as violations in `v`."""
        for i, name in enumerate(event_types):
            v.check(name in EVENT_TYPES, f"filter.event_types[{i}]", f"unknown event type {name!r}")
        for i, name in enumerate(stream_types):
            v.check(
                name in STREAM_TYPES,
                f"filter.stream_types[{i}]",
                f"unknown stream type {name!r}; one of {', '.join(sorted(STREAM_TYPES))}",
            )
        compiled: set[str] = set()
        for i, tag in enumerate(tags):
            compiled.update(self._compile_tag(tag, f"filter.tags[{i}]", v))
        # Unknown names were recorded as violations; the caller raises before using this.
        event_types = [name for name in event_types if name in EVENT_TYPES]
        stream_types = [name for name in stream_types if name in STREAM_TYPES]
        topics = topics_for(event_types, stream_types) if event_types or stream_types else ()
        if (event_types or stream_types) and not topics:
            # The kinds given exclude each other: nothing can match.
            topics = ("",)
        return LogFilter(topics=topics, tags=tuple(sorted(compiled)))

    def _compile_tag(self, tag: str, field: str, v: Violations) -> set[str]:
        match = _TAG.match(tag)
        if not v.check(
            match is not None,
            field,
            "must be municipality:<code>, police_zone:<code> or gang:<id>",
        ):
            return set()
        assert match is not None
        kind, value = match.groups()
        if kind == "municipality":
            v.check(self._catalog.has_municipality(value), field, f"unknown municipality {value!r}")
            return {tag}
        if kind == "police_zone":
            zone = self._catalog.police_zones.get(value)
            if not v.check(zone is not None, field, f"unknown police zone {value!r}"):
                return set()
            assert zone is not None
            return {f"municipality:{code}" for code in zone.municipalities}
        try:
            return {f"gang:{UUID(value)}"}
        except ValueError:
            v.check(False, field, f"gang id must be a UUID, not {value[:64]!r}")
            return set()

    async def position(self) -> int:
        """Return the last position alone: one small query, nothing read or decoded."""
        return await self._run(self._backend.head)

    async def head(self) -> tuple[int, datetime | None]:
        """Return the last position and when it was recorded."""
        last = await self._run(self._backend.last_notification)
        if last is None:
            return 0, None
        return last.id, self._decode([last])[0].event.timestamp  # type: ignore[attr-defined]

    async def read_stream(
        self, stream_id: UUID, from_version: int, backwards: bool, limit: int
    ) -> StreamWindow:
        """Read a window of one stream."""

        def read() -> tuple[list[RecordedEvent], int]:
            last = self._backend.read_stream(stream_id, descending=True, limit=1)
            if not last:
                raise NotFoundError("stream", str(stream_id))
            stream_version = last[0].originator_version
            if from_version > stream_version:
                msg = f"is beyond the stream's last version {stream_version}"
                raise OutOfRangeError("from_version", msg)
            rows = self._backend.read_stream(
                stream_id, from_version=from_version or None, descending=backwards, limit=limit
            )
            return self._decode(rows), stream_version

        events, stream_version = await self._run(read)
        last_read = events[-1].event.originator_version if events else 0  # type: ignore[attr-defined]
        if backwards:
            next_version = last_read - 1 if events and last_read > 1 else 0
        else:
            next_version = last_read + 1 if events and last_read < stream_version else 0
        return StreamWindow(events, next_version, stream_version)

    async def read_all(
        self, from_position: int, backwards: bool, limit: int, log_filter: LogFilter
    ) -> LogWindow:
        """Read a page of the global log."""

        def read() -> tuple[list[RecordedEvent], int]:
            page = self._page(
                after=0 if backwards else from_position,
                before=(from_position or None) if backwards else None,
                limit=limit,
                log_filter=log_filter,
                descending=backwards,
            )
            if from_position > page.head:
                msg = f"is beyond the head of the log ({page.head})"
                raise OutOfRangeError("from_position", msg)
            return self._decode(page.notifications), page.head

        events, head = await self._run(read)
        return LogWindow(events, continuation(events, head, backwards, limit), head)

    async def follow(
        self, after: int | None, log_filter: LogFilter, batch_size: int
    ) -> AsyncIterator[FollowItem]:
        """Yield matching events after `after` (None: from the end), then live ones."""
        settings = self._settings
        if after is None:
            after = await self.position()
        else:
            head = await self.position()
            if after > head:
                msg = f"is beyond the head of the log ({head})"
                raise OutOfRangeError("after_position", msg)
        position = after  # everything up to here has been sent or skipped
        sent = after  # the last position a message told the subscriber about
        live = False
        last_checkpoint = time.monotonic()
        self.subscribers += 1
        try:
            while True:
                if self._stopping:
                    msg = "the server is shutting down; resubscribe after the last position"
                    raise StoreUnavailableError(msg)
                events, head = await self._run(
                    partial(self._read_forwards, position, settings.page_size, log_filter)
                )
                if live and head - position > settings.fell_behind_lag:
                    live = False
                    yield FellBehind(position, head)
                for start in range(0, len(events), batch_size):
                    yield EventsReached(events[start : start + batch_size])
                if events:
                    position = sent = events[-1].position
                if len(events) == settings.page_size:
                    continue
                # Every matching event up to the head has been sent: the rest was filtered out.
                position = max(position, head)
                skipped = position - sent
                now = time.monotonic()
                if skipped and (
                    not live
                    or skipped >= settings.checkpoint_skipped
                    or now - last_checkpoint >= settings.checkpoint_seconds
                ):
                    yield Checkpoint(position)
                    sent, last_checkpoint = position, now
                if not live:
                    live = True
                    yield CaughtUp(position)
                await self._watcher.wait_beyond(position, settings.idle_wait_seconds)
        finally:
            self.subscribers -= 1

    def _read_forwards(
        self, after: int, limit: int, log_filter: LogFilter
    ) -> tuple[list[RecordedEvent], int]:
        page = self._page(
            after=after, before=None, limit=limit, log_filter=log_filter, descending=False
        )
        return self._decode(page.notifications), page.head

    def _page(
        self,
        *,
        after: int,
        before: int | None,
        limit: int,
        log_filter: LogFilter,
        descending: bool,
    ) -> LogPage:
        return self._backend.read_page(
            after=after,
            before=before,
            limit=limit,
            topics=log_filter.topics,
            tags=log_filter.tags,
            descending=descending,
        )

    def _decode(self, notifications: Sequence[Notification]) -> list[RecordedEvent]:
        to_domain_event = self._mapper.to_domain_event
        return self._personal_data.reveal_events(
            [RecordedEvent(n.id, to_domain_event(n)) for n in notifications]
        )

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reads, work)
        except BackendUnavailableError as err:
            msg = f"event store unavailable: {err}"
            raise StoreUnavailableError(msg) from err
