"""Group commit: one writer thread turns concurrent commands into few, larger transactions."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from eventsourcing.persistence import Mapper

from service.app.loading import AggregateLoader
from service.app.results import WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.domain.base import RegistryAggregate, recording_metadata
from service.domain.errors import (
    ConcurrentModificationError,
    RegistryError,
    RequestIdReusedError,
    StoreUnavailableError,
)
from service.store.base import (
    AppendConflictError,
    BackendUnavailableError,
    EventStoreBackend,
    IdempotencyRecord,
    PendingWrite,
)

log = structlog.get_logger(__name__)

Decision = Callable[[UnitOfWork], RegistryAggregate]


class WriteObserver(Protocol):
    """Told on the writer thread what each command came to, before its caller is answered.

    It must be quick and must not block: the next batch waits for it (e.g. metrics).
    """

    def appended(self, topics: Sequence[str]) -> None:
        """A command was committed; `topics` are the stored topics of its events."""

    def replayed(self) -> None:
        """A command was answered from its request id's record; nothing was written."""

    def rejected(self, error: BaseException) -> None:
        """A command was refused (a RegistryError) or failed."""


@dataclass(eq=False)
class WriteJob:
    """One command waiting to be committed, and the asyncio future its caller awaits."""

    context: WriteContext
    fingerprint: str
    decide: Decision
    loop: asyncio.AbstractEventLoop
    waiter: asyncio.Future[WriteResult]
    outcome: WriteResult | BaseException | None = None
    topics: tuple[str, ...] = ()
    """The stored topics of the events appended for the command, once it is committed."""

    def settle(self, outcome: WriteResult | BaseException) -> None:
        """Record the job's outcome (the first one wins); it is delivered after the batch."""
        if self.outcome is None:
            self.outcome = outcome

    def accept(self, pending: PendingWrite, position: int) -> None:
        """Settle the job with its committed write, which landed at `position`."""
        self.settle(WriteResult(pending.aggregate_id, pending.version, position))
        self.topics = tuple(event.topic for event in pending.events)


class GroupCommitWriter:
    """Runs commands one after another on a single thread and commits them in batches.

    Commands queued while a transaction is in flight are decided against the state left by
    the commands before them and committed together, with their idempotency records, in the
    next transaction. A batch that loses a race with another process is retried command by
    command, each re-decided against fresh state.
    """

    def __init__(
        self,
        backend: EventStoreBackend,
        mapper: Mapper[Any],
        *,
        max_batch: int = 256,
        max_attempts: int = 5,
        observer: WriteObserver | None = None,
    ) -> None:
        self._backend = backend
        self.observer = observer
        """Told what each command came to (may be set while the writer runs)."""
        self._mapper = mapper
        self._loader = AggregateLoader(backend, mapper)
        self._max_batch = max_batch
        self._max_attempts = max_attempts
        self._queue: queue.SimpleQueue[WriteJob | None] = queue.SimpleQueue()
        self._accepting = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        with self._lock:
            self._accepting = True
        self._thread.start()

    def stop(self) -> None:
        """Commit every queued command, then stop the writer thread."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(None)
        self._thread.join()

    async def execute(
        self, context: WriteContext, fingerprint: str, decide: Decision
    ) -> WriteResult:
        """Queue a command and wait until it is committed or rejected."""
        loop = asyncio.get_running_loop()
        job = WriteJob(context, fingerprint, decide, loop, loop.create_future())
        with self._lock:
            if not self._accepting:
                raise StoreUnavailableError("the registry is shutting down")
            self._queue.put(job)
        return await job.waiter

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < self._max_batch:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is None:
                    stopping = True
                    break
                batch.append(queued)
            # A caller that gave up before its command ran gets nothing written.
            runnable = [j for j in batch if not j.waiter.cancelled()]
            try:
                self._commit_batch(runnable)
            except Exception as err:  # the thread must survive whatever a batch does
                log.exception("write_batch_crashed")
                _fail(runnable, err)
            observer = self.observer
            if observer is not None:
                _report(runnable, observer)
            _deliver(runnable)

    def _commit_batch(self, batch: Sequence[WriteJob]) -> None:
        if not batch:
            return
        try:
            known = self._backend.find_requests(sorted({j.context.request_id for j in batch}))
        except BackendUnavailableError as err:
            _fail(batch, StoreUnavailableError(f"event store unavailable: {err}"))
            return
        shared: dict[Any, RegistryAggregate] = {}
        decided: list[WriteJob] = []
        staged: list[tuple[WriteJob, PendingWrite]] = []
        deferred: list[WriteJob] = []
        in_batch: set[str] = set()
        for job in batch:
            request_id = job.context.request_id
            if request_id in known:
                _resolve_replay(job, known[request_id])
            elif request_id in in_batch:
                deferred.append(job)
            else:
                decided.append(job)
                pending = self._decide(job, shared)
                if pending is not None:
                    staged.append((job, pending))
                    in_batch.add(request_id)
        if staged and not self._append(staged):
            # The batch lost a race with another writer: every decision in it, accepted or
            # rejected, was taken against state that never existed. Decide each one again.
            for job in decided:
                job.outcome = None
                self._commit_alone(job)
        if deferred:
            self._commit_batch(deferred)

    def _append(self, staged: list[tuple[WriteJob, PendingWrite]]) -> bool:
        """Commit the staged writes; False when the batch conflicted and nothing was written."""
        try:
            positions = self._backend.append([pending for _, pending in staged])
        except AppendConflictError:
            log.info("write_batch_conflicted", size=len(staged))
            return False
        except BackendUnavailableError as err:
            error = StoreUnavailableError(f"event store unavailable: {err}")
            _fail([job for job, _ in staged], error)
            return True
        for (job, pending), position in zip(staged, positions, strict=True):
            job.accept(pending, position)
        return True

    def _commit_alone(self, job: WriteJob) -> None:
        request_id = job.context.request_id
        for _ in range(self._max_attempts):
            try:
                known = self._backend.find_requests([request_id])
                if request_id in known:
                    _resolve_replay(job, known[request_id])
                    return
                pending = self._decide(job, {})
                if pending is None:
                    return
                (position,) = self._backend.append([pending])
            except AppendConflictError:
                continue
            except BackendUnavailableError as err:
                job.settle(StoreUnavailableError(f"event store unavailable: {err}"))
                return
            job.accept(pending, position)
            return
        job.settle(ConcurrentModificationError(f"request {request_id}"))

    def _decide(self, job: WriteJob, shared: dict[Any, RegistryAggregate]) -> PendingWrite | None:
        """Run the command; on rejection resolve its future and return None."""
        unit = UnitOfWork(self._loader.load, shared)
        try:
            with recording_metadata(job.context.metadata()):
                primary = job.decide(unit)
            collected = unit.collect()
            stored = [self._mapper.to_stored_event(event) for event, _ in collected]
            unit.publish()
        except RegistryError as err:
            job.settle(err)
            return None
        except BackendUnavailableError as err:
            job.settle(StoreUnavailableError(f"event store unavailable: {err}"))
            return None
        except Exception as err:
            log.exception("command_failed", request_id=job.context.request_id)
            job.settle(err)
            return None
        return PendingWrite(
            request_id=job.context.request_id,
            fingerprint=job.fingerprint,
            aggregate_id=primary.id,
            version=primary.version,
            events=stored,
            tags=[sorted(tags) for _, tags in collected],
            subject_keys=dict(unit.subject_keys),
            erased_subjects=tuple(unit.erased_subjects),
        )


def _resolve_replay(job: WriteJob, record: IdempotencyRecord) -> None:
    if record.fingerprint != job.fingerprint:
        job.settle(RequestIdReusedError(record.request_id))
        return
    job.settle(WriteResult(record.aggregate_id, record.version, record.position, replayed=True))


def _fail(jobs: Sequence[WriteJob], err: BaseException) -> None:
    for job in jobs:
        job.settle(err)


def _report(jobs: Sequence[WriteJob], observer: WriteObserver) -> None:
    """Tell the observer each job's outcome; its failures never reach the callers."""
    try:
        for job in jobs:
            outcome = job.outcome
            if isinstance(outcome, WriteResult):
                if outcome.replayed:
                    observer.replayed()
                else:
                    observer.appended(job.topics)
            elif outcome is not None:
                observer.rejected(outcome)
    except Exception:
        log.exception("write_observer_failed")


def _deliver(jobs: Sequence[WriteJob]) -> None:
    """Wake each caller's event loop once per batch rather than once per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[WriteJob]] = defaultdict(list)
    for job in jobs:
        by_loop[job.loop].append(job)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_waiters, group)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting
            continue


def _settle_waiters(jobs: Sequence[WriteJob]) -> None:
    for job in jobs:
        if job.waiter.done():
            continue
        outcome = job.outcome
        if isinstance(outcome, WriteResult):
            job.waiter.set_result(outcome)
        else:
            job.waiter.set_exception(outcome or RuntimeError("write finished without outcome"))
