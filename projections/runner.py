"""Runs one projection: follows the log and applies it a page (one transaction) at a time."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import structlog

from projections.base import Projection, Recorded
from projections.store import (
    FAULTED,
    RUNNING,
    ProjectionConflictError,
    ProjectionState,
    ViewStore,
    ViewUnavailableError,
)
from service.app.head_watcher import HeadWatcher
from service.domain.events import topics_for
from service.store.base import BackendUnavailableError, EventStoreBackend
from service.store.transcoding import RegistryMapper

log = structlog.get_logger(__name__)

RETRY_SECONDS = 1.0
"""Pause after a database could not be reached, before trying again."""
PERSIST_EMPTY_SECONDS = 0.5
"""How often a position moved only over events the projection does not read is written."""


class ProjectionRunner:
    """Keeps one projection's rows up to date with the log and tracks what it reached.

    With `apply=False` it only watches the projection's tracked state, for a server whose
    projections are applied by separate worker processes (`python -m projections`).
    A failing event stops the projection in the FAULTED state (it is never skipped); an
    operator resumes it, or a restart retries it.
    """

    def __init__(
        self,
        backend: EventStoreBackend,
        mapper: RegistryMapper,
        store: ViewStore,
        projection: Projection,
        watcher: HeadWatcher,
        *,
        page_size: int = 500,
        apply: bool = True,
        poll_interval: float = 0.1,
        control_interval: float = 1.0,
    ) -> None:
        self._backend = backend
        self._mapper = mapper
        self.store = store
        self.projection = projection
        self.name = projection.name
        self._watcher = watcher
        self._page_size = page_size
        self.applying = apply
        self._poll_interval = poll_interval
        self._control_interval = control_interval
        self._topics = topics_for(projection.event_types, [])
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"proj-{self.name}")
        self._progress: asyncio.Condition | None = None
        self._nudged: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self._persisted: int | None = None  # the tracked position as last read or written
        self._persisted_at = 0.0
        self.position = 0
        self.start_position = 0
        self.status = RUNNING
        self.error = ""
        store.install(projection.name, projection.version, projection.schema, projection.tables)

    def progress(self) -> tuple[int, int] | None:
        """(position, tracked position written) when applied here; None when only watched."""
        if not self.applying or self._persisted is None:
            return None
        return self.position, self._persisted

    @property
    def failure(self) -> str | None:
        """Why the projection stopped, if it is FAULTED."""
        return self.error if self.status == FAULTED else None

    def start(self) -> None:
        """Start following the log in the running event loop."""
        self._progress = asyncio.Condition()
        self._nudged = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop after the batch in hand; its transaction either committed or did not."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def refresh(self) -> None:
        """Re-read the tracked state now, so that this process sees an operator's change."""
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(self._executor, self.store.state, self.name)
        await self._adopt(state, loop)
        self.nudge()

    def nudge(self) -> None:
        """Re-read the control state now (after an operator changed it)."""
        if self._nudged is not None:
            self._nudged.set()

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the model reflects `position`; False on timeout or if it is FAULTED."""
        assert self._progress is not None, "the runner was not started"
        async with self._progress:
            try:
                async with asyncio.timeout(timeout):
                    await self._progress.wait_for(
                        lambda: self.position >= position or self.status == FAULTED
                    )
            except TimeoutError:
                return False
        return self.status != FAULTED

    async def wait_for_change(self, position: int, timeout: float) -> int:
        """Wait until the position or the status changes (or `timeout`); return the position.

        Returns at once, for good, once `release_waiters` was called.
        """
        assert self._progress is not None, "the runner was not started"
        status = self.status
        async with self._progress:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._progress.wait_for(
                        lambda: self.position != position or self.status != status or self.closing
                    )
        return self.position

    async def release_waiters(self) -> None:
        """Wake every caller of `wait_for_change` for good: the server is shutting down."""
        self.closing = True
        if self._progress is not None:
            async with self._progress:
                self._progress.notify_all()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.applying:
            with contextlib.suppress(ViewUnavailableError):
                state = await loop.run_in_executor(self._executor, self.store.state, self.name)
                if state.status == FAULTED:
                    # A restart is how a fixed projection is retried.
                    log.info("projection_retrying", projection=self.name, error=state.error)
                    await loop.run_in_executor(
                        self._executor, self.store.set_status, self.name, RUNNING, ""
                    )
        while True:
            try:
                state = await loop.run_in_executor(self._executor, self.store.state, self.name)
            except (ViewUnavailableError, LookupError) as err:
                log.warning("projection_state_unavailable", projection=self.name, error=str(err))
                await self._idle(RETRY_SECONDS)
                continue
            await self._adopt(state, loop)
            if not self.applying or state.status != RUNNING:
                await self._idle(self._control_interval if self.applying else self._poll_interval)
                continue
            await self._step(loop, self.position)

    async def _step(self, loop: asyncio.AbstractEventLoop, after: int) -> None:
        persisted = after if self._persisted is None else self._persisted
        try:
            position, head, wrote = await loop.run_in_executor(
                self._executor, self._apply_page, after, persisted
            )
        except (BackendUnavailableError, ViewUnavailableError) as err:
            log.warning("projection_batch_failed", projection=self.name, error=str(err))
            await self._idle(RETRY_SECONDS)
            return
        except ProjectionConflictError:
            return  # applied by another worker, or reset by an operator: re-read the state
        except Exception as err:
            error = f"at position {after}: {type(err).__name__}: {err}"
            log.exception("projection_faulted", projection=self.name, position=after)
            with contextlib.suppress(ViewUnavailableError):
                await loop.run_in_executor(
                    self._executor, self.store.set_status, self.name, FAULTED, error
                )
            await self._set(after, FAULTED, error)
            await self._idle(self._control_interval)
            return
        if wrote:
            self._persisted, self._persisted_at = position, loop.time()
        await self._set(position, RUNNING, "")
        if position >= head:
            await self._persist_idle_position(loop)
            await self._wait_for_log(position)

    async def _persist_idle_position(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write a position reached over pages without events of ours, now and then.

        Skipping those writes keeps projections that read rare event types from taking the
        view store's write lock on every commit; reads here wait on the in-memory position.
        """
        persisted = self._persisted
        if persisted is None or self.position <= persisted:
            return
        if loop.time() - self._persisted_at < PERSIST_EMPTY_SECONDS:
            return
        try:
            await loop.run_in_executor(
                self._executor, self._write_position, persisted, self.position
            )
        except (ProjectionConflictError, ViewUnavailableError):
            return  # re-read on the next round
        self._persisted, self._persisted_at = self.position, loop.time()

    def _write_position(self, previous: int, position: int) -> None:
        with self.store.transaction() as tx:
            tx.advance(self.name, previous=previous, position=position)

    async def _wait_for_log(self, position: int) -> None:
        assert self._nudged is not None
        waiter = asyncio.ensure_future(self._watcher.wait_beyond(position, self._control_interval))
        nudge = asyncio.ensure_future(self._nudged.wait())
        try:
            await asyncio.wait((waiter, nudge), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, nudge):
                task.cancel()
            self._nudged.clear()

    async def _idle(self, seconds: float) -> None:
        assert self._nudged is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._nudged.wait()
        self._nudged.clear()

    async def _adopt(self, state: ProjectionState, loop: asyncio.AbstractEventLoop) -> None:
        """Take the tracked state; keep a position moved past events that are not ours."""
        position = state.position
        if not self.applying or state.position != self._persisted:
            # First read, an operator's reset, or another worker: the tracked state rules.
            self._persisted, self._persisted_at = state.position, loop.time()
        else:
            position = max(self.position, state.position)  # see _persist_idle_position
        self.start_position = state.start_position
        await self._set(position, state.status, state.error)

    async def _set(self, position: int, status: str, error: str) -> None:
        if self._progress is None:  # not started: nobody waits
            self.position, self.status, self.error = position, status, error
            return
        async with self._progress:
            self.position, self.status, self.error = position, status, error
            self._progress.notify_all()

    def process_page(self, after: int) -> tuple[int, int]:
        """Apply the next page of relevant events after `after`; return (new position, head).

        The tracked position is written with the page, even when it holds no event of ours.
        """
        reached, head, _ = self._apply_page(after, after, write_empty=True)
        return reached, head

    def _apply_page(
        self, after: int, persisted: int, *, write_empty: bool = False
    ) -> tuple[int, int, bool]:
        """Apply the page after `after`, moving the tracked position from `persisted`.

        Returns (position reached, head, whether the tracked position was written).
        """
        page = self._backend.read_page(after=after, limit=self._page_size, topics=self._topics)
        notifications = page.notifications
        # A short page holds every relevant event up to the head: the rest is not ours.
        full = len(notifications) == self._page_size
        reached = notifications[-1].id if full else page.head
        if reached <= after:
            return after, page.head, False
        if not notifications and not write_empty:
            return reached, page.head, False
        batch = [Recorded.stored(notification, self._mapper) for notification in notifications]
        with self.store.transaction() as tx:
            tx.advance(self.name, previous=persisted, position=reached)
            self.projection.apply(tx, batch)
        return reached, page.head, True
