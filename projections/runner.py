"""Runs a projection: follows the log and applies it in batches, tracking its position."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from eventsourcing.persistence import Mapper

from projections.statistics import EVENT_TYPES, StatisticsBatch
from projections.views import (
    ProjectionConflictError,
    StatisticsRow,
    StatisticsView,
    ViewUnavailableError,
)
from service.app.head_watcher import HeadWatcher
from service.areas import AreaCatalog
from service.domain.events import topics_for
from service.store.base import BackendUnavailableError, EventStoreBackend

log = structlog.get_logger(__name__)


class StatisticsRunner:
    """Keeps the statistics view up to date with the log, one page (one transaction) at a time.

    With `apply=False` it only watches the view's tracked position, for a server whose
    projections are applied by separate worker processes (`python -m projections`).
    """

    def __init__(
        self,
        backend: EventStoreBackend,
        mapper: Mapper[Any],
        view: StatisticsView,
        catalog: AreaCatalog,
        watcher: HeadWatcher,
        *,
        page_size: int = 500,
        idle_wait_seconds: float = 5.0,
        apply: bool = True,
        poll_interval: float = 0.1,
    ) -> None:
        self._backend = backend
        self._mapper = mapper
        self.view = view
        self._catalog = catalog
        self._watcher = watcher
        self._page_size = page_size
        self._idle_wait = idle_wait_seconds
        self._apply = apply
        self._poll_interval = poll_interval
        self._topics = topics_for(EVENT_TYPES, [])
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection")
        self._progress: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        self.failure: str | None = None

    def start(self) -> None:
        """Start following the log in the running event loop."""
        self._progress = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop after the batch in hand; its transaction either committed or did not."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)
        self.view.close()

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the view reflects `position`; False on timeout or if the runner failed."""
        assert self._progress is not None, "the runner was not started"
        async with self._progress:
            try:
                async with asyncio.timeout(timeout):
                    await self._progress.wait_for(
                        lambda: self.position >= position or self.failure is not None
                    )
            except TimeoutError:
                return False
        return self.failure is None

    async def query(
        self,
        area_kind: str,
        area_codes: Sequence[str],
        period_kind: str,
        from_period: str,
        to_period: str,
    ) -> list[StatisticsRow]:
        """Query the view on the projection's own thread (its connection is not shared)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor,
            self.view.query,
            area_kind,
            area_codes,
            period_kind,
            from_period,
            to_period,
        )

    async def _run(self) -> None:
        try:
            await (self._follow() if self._apply else self._watch())
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # A projection that cannot apply an event stops, visibly, rather than skip it.
            self.failure = f"{type(err).__name__}: {err}"
            log.exception("projection_failed", projection="statistics", position=self.position)
            assert self._progress is not None
            async with self._progress:
                self._progress.notify_all()

    async def _watch(self) -> None:
        """Track the position that workers reach, so reads can wait for it."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(ViewUnavailableError):
                position = await loop.run_in_executor(self._executor, self.view.position)
                if position != self.position:
                    await self._advance(position)
            await asyncio.sleep(self._poll_interval)

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        self.position = await loop.run_in_executor(self._executor, self.view.position)
        while True:
            try:
                position, head = await loop.run_in_executor(
                    self._executor, self.process_page, self.position
                )
            except (BackendUnavailableError, ViewUnavailableError, ProjectionConflictError) as err:
                # A database is unreachable, or another worker applied this batch: re-read the
                # tracked position (reconnecting) and retry.
                log.warning("projection_batch_failed", error=str(err))
                await asyncio.sleep(1.0)
                with contextlib.suppress(ViewUnavailableError):
                    self.position = await loop.run_in_executor(self._executor, self.view.position)
                continue
            await self._advance(position)
            if position >= head:
                await self._watcher.wait_beyond(position, self._idle_wait)

    async def _advance(self, position: int) -> None:
        assert self._progress is not None
        async with self._progress:
            self.position = position
            self._progress.notify_all()

    def process_page(self, after: int) -> tuple[int, int]:
        """Apply the next page of relevant events after `after`; return (new position, head)."""
        page = self._backend.read_page(after=after, limit=self._page_size, topics=self._topics)
        notifications = page.notifications
        # A short page holds every relevant event up to the head: the rest is not ours.
        full = len(notifications) == self._page_size
        reached = notifications[-1].id if full else page.head
        if reached == after:
            return after, page.head
        events = [self._mapper.to_domain_event(n) for n in notifications]
        batch = StatisticsBatch(
            self._catalog, self.view.load_facts({e.originator_id for e in events})
        )
        for event in events:
            batch.apply(event.originator_id, type(event).__name__, event)
        self.view.commit(
            previous=after,
            position=reached,
            facts={incident: batch.facts[incident] for incident in batch.changed},
            deltas=list(batch.nonzero_deltas()),
        )
        return reached, page.head
