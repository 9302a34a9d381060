"""The projections of one process: their runners, queries on their models, and operations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from projections.runner import ProjectionRunner
from projections.store import PAUSED, RUNNING, ViewStore, ViewTransaction, ViewUnavailableError
from service.domain.errors import NotFoundError, StoreUnavailableError
from service.store.base import BackendUnavailableError, EventStoreBackend
from service.store.transcoding import RegistryMapper

T = TypeVar("T")


@dataclass(frozen=True)
class ProjectionStatus:
    """Where a projection is and how far behind the log."""

    name: str
    description: str
    status: str
    error: str
    position: int
    start_position: int
    head: int
    lag_events: int
    lag_seconds: float
    applied_here: bool
    updated_at: datetime


class Projections:
    """Every projection of the registry on one view store."""

    def __init__(
        self,
        backend: EventStoreBackend,
        mapper: RegistryMapper,
        store: ViewStore,
        runners: Sequence[ProjectionRunner],
        *,
        read_threads: int = 2,
    ) -> None:
        self._backend = backend
        self._mapper = mapper
        self.store = store
        self.runners = {runner.name: runner for runner in runners}
        self._reads = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="views")

    def start(self) -> None:
        """Start every runner in the running event loop."""
        for runner in self.runners.values():
            runner.start()

    async def release_waiters(self) -> None:
        """End every wait for a change (watch streams end when the server shuts down)."""
        for runner in self.runners.values():
            await runner.release_waiters()

    async def stop(self) -> None:
        """Stop every runner after its batch in hand, then close the view store."""
        for runner in self.runners.values():
            await runner.stop()
        self._reads.shutdown(wait=True)
        self.store.close()

    def runner(self, name: str) -> ProjectionRunner:
        """The runner of a projection; NotFoundError when there is none of that name."""
        try:
            return self.runners[name]
        except KeyError:
            raise NotFoundError("projection", name) from None

    async def read(self, query: Callable[[ViewTransaction], T]) -> T:
        """Run a query in one read transaction (one snapshot) on the views' own threads."""

        # Taken on the event loop, where runners move, before the snapshot is.
        progress = {
            name: found
            for name, runner in self.runners.items()
            if (found := runner.progress()) is not None
        }

        def run() -> T:
            with self.store.transaction(write=False) as tx:
                tx.progress = progress
                return query(tx)

        with _unavailable_as_store_error():
            return await asyncio.get_running_loop().run_in_executor(self._reads, run)

    async def status(self, name: str) -> ProjectionStatus:
        """One projection's state, with its lag behind the head of the log."""
        self.runner(name)
        (found,) = [s for s in await self.statuses() if s.name == name]
        return found

    async def statuses(self) -> list[ProjectionStatus]:
        """Every projection's state, with its lag behind the head of the log."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reads, self._statuses)
        except (ViewUnavailableError, BackendUnavailableError) as err:
            msg = f"the projections' state is unavailable: {err}"
            raise StoreUnavailableError(msg) from err

    def _statuses(self) -> list[ProjectionStatus]:
        head = self._backend.head()
        result = []
        for name in sorted(self.runners):
            runner = self.runners[name]
            state = self.store.state(name)
            # A runner applying here may be past the tracked position over events that are
            # not its own (written lazily).
            position = max(state.position, runner.position) if runner.applying else state.position
            behind = max(0, head - position)
            result.append(
                ProjectionStatus(
                    name=name,
                    description=runner.projection.describe(),
                    status=state.status,
                    error=state.error,
                    position=position,
                    start_position=state.start_position,
                    head=head,
                    lag_events=behind,
                    lag_seconds=self._lag_seconds(position) if behind else 0.0,
                    applied_here=runner.applying,
                    updated_at=datetime.fromisoformat(state.updated_at),
                )
            )
        return result

    def _lag_seconds(self, position: int) -> float:
        """How long ago the first event the projection has not applied was recorded."""
        page = self._backend.read_page(after=position, limit=1, topics=())
        if not page.notifications:
            return 0.0
        event: Any = self._mapper.to_domain_event(page.notifications[0])
        recorded: datetime = event.timestamp
        return max(0.0, (datetime.now(UTC) - recorded).total_seconds())

    async def pause(self, name: str) -> None:
        """Stop applying events (after the batch in hand) until resumed."""
        await self._control(name, lambda: self.store.set_status(name, PAUSED))

    async def resume(self, name: str) -> None:
        """Apply events again, after a pause or after a fault was fixed."""
        await self._control(name, lambda: self.store.set_status(name, RUNNING))

    async def reset(self, name: str, position: int) -> None:
        """Empty the model and apply events after `position` only (0: rebuild from scratch)."""
        runner = self.runner(name)
        tables = runner.projection.tables
        await self._control(name, lambda: self.store.reset(name, tables, position))

    async def _control(self, name: str, change: Callable[[], None]) -> None:
        runner = self.runner(name)
        with _unavailable_as_store_error():
            await asyncio.get_running_loop().run_in_executor(self._reads, change)
        try:
            await runner.refresh()
        except ViewUnavailableError:
            runner.nudge()


@contextmanager
def _unavailable_as_store_error() -> Iterator[None]:
    """Report a lost read-model database as the API's UNAVAILABLE (retry)."""
    try:
        yield
    except ViewUnavailableError as err:
        msg = f"the read models' database is unavailable: {err}"
        raise StoreUnavailableError(msg) from err
