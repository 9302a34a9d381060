"""Export: a range of the log as portable events, in the registry's plaintext JSON transcoding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification

from service.app.validation import Violations
from service.domain.errors import OutOfRangeError, StoreUnavailableError
from service.domain.events import STREAM_TYPE_OF_EVENT
from service.store.base import BackendUnavailableError, EventStoreBackend
from service.store.transcoding import RegistryMapper, registry_mapper

T = TypeVar("T")

DEFAULT_EXPORT_BATCH = 500
MAX_EXPORT_BATCH = 2000


class PortableEvent(NamedTuple):
    """One event of the log as it is exported and imported (ExportedEvent at the edge).

    `state` is every stored attribute of the event — business and recorded time, metadata,
    payload — in the registry's JSON transcoding, UTF-8, never encrypted. `position` is where
    the event was in the log it was exported from. (A named tuple: imports build thousands
    per call, several times faster than a frozen dataclass.)
    """

    position: int
    stream_id: UUID
    stream_type: str
    stream_version: int
    event_type: str
    recorded_at: datetime | None
    tags: tuple[str, ...]
    state: bytes


@dataclass(frozen=True)
class ExportFinished:
    """The end of an export: every event up to `position` was sent, `exported` in all."""

    position: int
    exported: int


ExportItem = list[PortableEvent] | ExportFinished


class LogExport:
    """Reads ranges of the log as portable events; reading and encoding run on the read threads.

    Each event is decoded through the store's mapper (which decrypts states encrypted at
    rest, see service/store/cipher.py) and encoded again by a mapper without cipher or
    compression, so an export is plaintext and the same whatever the store does with its
    states: an export is the operator's decrypted copy of the log, to be protected as such.
    Events stored by an older version of their class are exported upcast, in the current
    schema. An event this registry's keys cannot decrypt ends the export with
    EncryptionKeyError (FAILED_PRECONDITION).
    """

    def __init__(self, backend: EventStoreBackend, mapper: Mapper[Any], reads: Executor) -> None:
        self._backend = backend
        self._mapper = mapper
        self._plain: RegistryMapper = registry_mapper()
        self._reads = reads

    async def export(
        self, after_position: int, to_position: int, batch_size: int
    ) -> AsyncIterator[ExportItem]:
        """Yield the events after `after_position` up to `to_position` (0: the head now), in
        batches of at most `batch_size` (0: the default), then ExportFinished."""
        v = Violations()
        v.count(after_position, "after_position")
        v.count(to_position, "to_position")
        v.check(
            0 <= batch_size <= MAX_EXPORT_BATCH,
            "max_batch_size",
            f"must be from 1 to {MAX_EXPORT_BATCH} (0: default {DEFAULT_EXPORT_BATCH})",
        )
        v.check(
            not to_position or to_position >= after_position,
            "to_position",
            "must not be before after_position (0: the head)",
        )
        v.raise_if_any()
        size = batch_size or DEFAULT_EXPORT_BATCH
        head = await self._run(self._backend.head)
        for name, value in (("after_position", after_position), ("to_position", to_position)):
            if value > head:
                raise OutOfRangeError(name, f"is beyond the head of the log ({head})")
        end = to_position or head
        exported = 0
        # The next page is read (and encoded) while the current one is being sent.
        pending = self._read_ahead(after_position, end, size) if after_position < end else None
        try:
            while pending is not None:
                events = await pending
                pending = None
                if len(events) == size and events[-1].position < end:
                    pending = self._read_ahead(events[-1].position, end, size)
                if events:
                    exported += len(events)
                    yield events
        finally:
            if pending is not None:
                pending.cancel()
        yield ExportFinished(end, exported)

    def _read_ahead(self, after: int, end: int, size: int) -> asyncio.Future[list[PortableEvent]]:
        return asyncio.ensure_future(self._run(lambda: self._page(after, end, size)))

    def _page(self, after: int, end: int, size: int) -> list[PortableEvent]:
        notifications = self._backend.read_page(after=after, before=end + 1, limit=size)
        found = notifications.notifications
        if not found:
            return []
        tags = self._backend.read_tags(after, found[-1].id)
        return [self._portable(n, tags.get(n.id, ())) for n in found]

    def _portable(self, notification: Notification, tags: Sequence[str]) -> PortableEvent:
        event: Any = self._mapper.to_domain_event(notification)
        event_type = type(event).__name__
        return PortableEvent(
            position=notification.id,
            stream_id=event.originator_id,
            stream_type=STREAM_TYPE_OF_EVENT[event_type],
            stream_version=notification.originator_version,
            event_type=event_type,
            recorded_at=event.timestamp,
            tags=tuple(tags),
            state=self._plain.to_stored_event(event).state,
        )

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reads, work)
        except BackendUnavailableError as err:
            msg = f"event store unavailable: {err}"
            raise StoreUnavailableError(msg) from err
