"""Import: append exported events, in order, in one transaction per batch, at most once each.

An imported event keeps its stream id, stream version, tags and every stored attribute —
business and recorded time, metadata — and gets the next position of this log. A batch is
written whole or not at all. An event whose stream version is already in the log with the
same state is skipped, so an import can be run again, or resumed from before where it
stopped, without duplicates; one whose stream version holds another event is a conflict.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification, StoredEvent
from eventsourcing.utils import get_topic

from service.app.batches import MAX_LISTED, listed
from service.app.exporting import PortableEvent
from service.app.import_checks import (
    BatchChecks,
    Problem,
    check_events,
    decode,
    rows_of,
    warm_up,
)
from service.areas import AreaCatalog
from service.domain.errors import (
    ConcurrentModificationError,
    FieldViolation,
    ImportConflict,
    ImportConflictError,
    InvalidArgumentError,
    StoreUnavailableError,
)
from service.domain.events import EVENT_TYPES
from service.store.base import AppendConflictError, BackendUnavailableError, EventStoreBackend

MAX_IMPORT_BATCH = 2000
POOLED_BATCH = 500
"""Batches this large are checked in worker processes (smaller ones are not worth the trip)."""

FACTS_ONLY: dict[str, frozenset[str]] = {
    "WaveDetected": frozenset({"timestamp", "metadata", "trigger_position"}),
}
"""Derived events whose copies are the same when their facts are, with what is not a fact.

A registry's waves projection may record a wave from imported shootings before the imported
WaveDetected of the same wave (the same id) arrives: then both say the same, but were recorded
at other times, by other requests, at other trigger positions.
"""


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: events appended and skipped, and the positions appended at."""

    imported: int
    skipped: int
    first_position: int
    last_position: int


@dataclass
class _Plan:
    """The events of a batch still to append, and how many are already in the log."""

    new: list[int]
    skipped: int


class EventImport:
    """Checks and appends batches of portable events; the work runs on the read threads.

    Checking an event means decoding its state, most of an import's work, and the interpreter
    lock would hold it to one core. Batches of POOLED_BATCH events or more are therefore
    checked by `workers` processes (default: one per CPU; 0: none), started with the first
    such batch, while this process finds which events are in the log already and writes the
    others in a transaction that commits once every check has passed; smaller batches are
    checked here, first.
    """

    def __init__(
        self,
        backend: EventStoreBackend,
        mapper: Mapper[Any],
        catalog: AreaCatalog,
        reads: Executor,
        *,
        max_attempts: int = 5,
        workers: int | None = None,
    ) -> None:
        self._backend = backend
        self._mapper = mapper
        self._reads = reads
        self._max_attempts = max_attempts
        # Imported states are plaintext; they are stored as received unless the store
        # transforms states (a cipher or compression), in which case they are encoded again:
        # with encryption at rest, imported events are encrypted with the current key.
        self._store_as_received = mapper.cipher is None and mapper.compressor is None
        self._topics = {name: get_topic(cls) for name, cls in EVENT_TYPES.items()}
        self._municipalities = frozenset(catalog.municipalities)
        self._workers = (os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def import_events(self, events: Sequence[PortableEvent]) -> ImportResult:
        """Append the events (1 to MAX_IMPORT_BATCH, in log order) in one transaction."""
        if not 1 <= len(events) <= MAX_IMPORT_BATCH:
            msg = f"must hold 1 to {MAX_IMPORT_BATCH} events, not {len(events)}"
            raise InvalidArgumentError([FieldViolation("events", msg)])
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reads, self._import, events)
        except BackendUnavailableError as err:
            msg = f"event store unavailable: {err}"
            raise StoreUnavailableError(msg) from err

    def _import(self, events: Sequence[PortableEvent]) -> ImportResult:
        checks = self._checks(events)
        if not checks.pooled:
            checks.wait()
        try:
            # While the workers check the events, find which of them are in the log already.
            plan = self._plan(events, optimistic=True)
        except (InvalidArgumentError, ImportConflictError):
            checks.wait()  # problems of the events themselves are reported first
            raise
        for _ in range(self._max_attempts):
            if not plan.new:
                checks.wait()
                return ImportResult(0, plan.skipped, 0, 0)
            stored = [self._stored(events[i]) for i in plan.new]
            try:
                # The events are written while the workers check them; the transaction
                # commits only once every check has passed.
                positions = self._backend.append_events(
                    stored, [events[i].tags for i in plan.new], before_commit=checks.wait
                )
            except AppendConflictError:
                # A stream taken to be new was not, or another writer took one of the stream
                # versions meanwhile: plan again, looking every stream up.
                checks.wait()
                plan = self._plan(events)
                continue
            return ImportResult(len(positions), plan.skipped, positions[0], positions[-1])
        msg = f"import of {len(events)} events"
        raise ConcurrentModificationError(msg)

    def _checks(self, events: Sequence[PortableEvent]) -> BatchChecks:
        """Start checking the events: a large batch in the worker processes, else here."""
        pool = self._worker_pool() if len(events) >= POOLED_BATCH else None
        futures: list[Future[list[Problem]]] = []
        if pool is not None:
            rows = rows_of(events)
            size = -(-len(rows) // self._workers)
            try:
                known = self._municipalities
                futures = [
                    pool.submit(check_events, rows[start : start + size], known, start)
                    for start in range(0, len(rows), size)
                ]
            except BrokenProcessPool:
                self.close()
        return BatchChecks(events, futures, self._municipalities, self.close)

    def _worker_pool(self) -> ProcessPoolExecutor | None:
        with self._pool_lock:
            if self._pool is None and self._workers > 0:
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers,
                    # Never fork a process that runs gRPC's threads.
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=warm_up,
                )
            return self._pool

    def _plan(self, events: Sequence[PortableEvent], *, optimistic: bool = False) -> _Plan:
        """Sort the events into those to append and those already in the log.

        Versions must continue each stream: the first event of a stream in the batch at most
        one after the stream's last stored version, each next one right after the previous.
        An `optimistic` plan takes the streams that start in the batch to be new without
        looking them up: if one is not, appending conflicts, and a full plan follows.
        """
        first: dict[UUID, int] = {}
        for event in events:
            first.setdefault(event.stream_id, event.stream_version)
        streams = [s for s, v in first.items() if v > 1] if optimistic else list(first)
        stored = self._backend.stream_versions(streams)
        previous: dict[UUID, int] = {}
        found: list[FieldViolation] = []
        present: list[int] = []
        new: list[int] = []
        for index, event in enumerate(events):
            stream, version = event.stream_id, event.stream_version
            last_stored = stored.get(stream, 0)
            if stream in previous:
                expected = previous[stream] + 1
                ok = version == expected
                why = f"must be {expected}, right after the stream's previous event in the batch"
            else:
                ok = version <= last_stored + 1
                why = (
                    f"must be at most {last_stored + 1}: the stream's last version in the log "
                    f"is {last_stored}"
                )
            if not ok:
                found.append(FieldViolation(f"events[{index}].stream_version", why))
            previous[stream] = version
            (present if version <= last_stored else new).append(index)
        if found:
            raise InvalidArgumentError(listed(found, "events"))
        self._check_present(events, present)
        return _Plan(new=new, skipped=len(present))

    def _check_present(self, events: Sequence[PortableEvent], present: Sequence[int]) -> None:
        """Raise ImportConflictError unless each event already in the log is the same there."""
        if not present:
            return
        streams = list(dict.fromkeys(events[i].stream_id for i in present))
        in_log = self._backend.read_streams(streams)
        conflicts: list[ImportConflict] = []
        for index in present:
            event = events[index]
            existing = _at_version(in_log.get(event.stream_id, []), event.stream_version)
            if existing is None or not self._same(event, existing):
                position = existing.id if existing is not None else 0
                conflicts.append(
                    ImportConflict(index, str(event.stream_id), event.stream_version, position)
                )
        if conflicts:
            raise ImportConflictError(conflicts[:MAX_LISTED], len(conflicts))

    def _same(self, event: PortableEvent, existing: Notification) -> bool:
        if existing.topic != self._topics.get(event.event_type):
            return False
        if self._store_as_received and existing.state == event.state:
            return True  # the same bytes: no need to decode either
        try:
            incoming = vars(_decoded(event))
        except Exception:
            return False
        stored = vars(self._mapper.to_domain_event(existing))
        ignored = FACTS_ONLY.get(event.event_type)
        if ignored:
            incoming = {k: v for k, v in incoming.items() if k not in ignored}
            stored = {k: v for k, v in stored.items() if k not in ignored}
        return bool(incoming == stored)

    def _stored(self, event: PortableEvent) -> StoredEvent:
        topic = self._topics[event.event_type]
        if self._store_as_received:
            state = event.state
        else:
            state = self._mapper.to_stored_event(_decoded(event)).state
        return StoredEvent(event.stream_id, event.stream_version, topic, state)


def _decoded(event: PortableEvent) -> Any:
    return decode(event.event_type, event.stream_id, event.stream_version, event.state)


def _at_version(stream: Sequence[Notification], version: int) -> Notification | None:
    found = stream[version - 1] if 0 < version <= len(stream) else None
    return found if found is not None and found.originator_version == version else None
