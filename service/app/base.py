"""What every application service shares: the writer, the loader, the catalog and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from service.app.commands import Command
from service.app.loading import AggregateLoader
from service.app.personal_data import PersonalData
from service.app.results import RecordedEvent, WriteContext, WriteResult
from service.app.validation import Violations
from service.app.writer import Decision, GroupCommitWriter
from service.areas import AreaCatalog
from service.domain.base import RegistryAggregate
from service.domain.errors import NotFoundError, StoreUnavailableError
from service.store.base import BackendUnavailableError, EventStoreBackend

A = TypeVar("A", bound=RegistryAggregate)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ServiceDeps:
    """The collaborators of the application services, built once by the composition root."""

    writer: GroupCommitWriter
    loader: AggregateLoader
    catalog: AreaCatalog
    clock: Clock
    reads: Executor
    backend: EventStoreBackend
    """For checks across many requests before they are queued (e.g. request ids of a batch)."""
    personal_data: PersonalData
    """Seals and reveals personal data about participants (see service/app/personal_data.py)."""


class ApplicationService:
    """Base of the application services."""

    def __init__(self, deps: ServiceDeps) -> None:
        self._deps = deps
        self._catalog = deps.catalog

    def _now(self) -> datetime:
        return self._deps.clock()

    def _business_time(self, given: datetime | None, v: Violations) -> datetime:
        """Return the given business time, or now; a time in the future is a violation."""
        now = self._now()
        v.not_future(given, "occurred_at", now)
        return given or now

    async def _write(
        self, command: Command, context: WriteContext, decide: Decision
    ) -> WriteResult:
        """Queue the command for group commit and wait for its outcome."""
        fingerprint = command.fingerprint(context.expected_version)
        return await self._deps.writer.execute(context, fingerprint, decide)

    async def _read(
        self,
        cls: type[A],
        aggregate_id: UUID,
        then: Callable[[A, list[RecordedEvent]], list[RecordedEvent]] | None = None,
    ) -> tuple[A, list[RecordedEvent]]:
        """Load an aggregate and its history from the write model; `then`, when given, runs
        in the same read job on an aggregate of `cls` and returns the history to answer."""
        loader = self._deps.loader

        def load() -> tuple[object, list[RecordedEvent]]:
            aggregate, history = loader.load_with_history(aggregate_id)
            if then is not None and isinstance(aggregate, cls):
                history = then(aggregate, history)
            return aggregate, history

        loop = asyncio.get_running_loop()
        try:
            aggregate, history = await loop.run_in_executor(self._deps.reads, load)
        except BackendUnavailableError as err:
            msg = f"event store unavailable: {err}"
            raise StoreUnavailableError(msg) from err
        if not isinstance(aggregate, cls):
            raise NotFoundError(cls.STREAM_TYPE, str(aggregate_id))
        return aggregate, history
