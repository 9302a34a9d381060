"""Readiness that follows the event store: NOT_SERVING while the store cannot be read.

`StoreReadiness` asks the store for its head position every `interval` seconds (on the registry's
read threads, bounded by `timeout`) and sets the health status of the readiness names to
SERVING or NOT_SERVING accordingly. Liveness is left alone: a process whose database went
away is still alive, and serves again by itself once the database is back. Transitions are
logged once each (`store_unreachable`, `store_reachable`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog
from grpc_health.v1 import health, health_pb2

log = structlog.get_logger("service.api")

Probe = Callable[[], Awaitable[object]]
"""Reads something small from the store; raises (or hangs) while the store is unreachable."""


class StoreReadiness:
    """Sets the readiness health names from periodic probes of the event store."""

    def __init__(
        self,
        health_servicer: health.aio.HealthServicer,
        probe: Probe,
        names: Sequence[str],
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
    ) -> None:
        """Probe with `probe` every `interval` seconds, failing a probe after `timeout`."""
        self._health = health_servicer
        self._probe = probe
        self._names = tuple(names)
        self._interval = interval
        self._timeout = timeout
        self._reachable = True
        self._pending: asyncio.Task[object] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def reachable(self) -> bool:
        """Whether the last probe succeeded (True until one fails)."""
        return self._reachable

    def start(self) -> None:
        """Start probing in the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="store-readiness")

    async def stop(self) -> None:
        """Stop probing; the health statuses are left as they are."""
        for task in (self._task, self._pending):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._pending = None

    async def check(self) -> bool:
        """Probe once and update the health statuses; whether the store answered in time.

        A probe still running from an earlier check counts as a failure and is not doubled,
        so that a hanging store never ties up more than one read thread.
        """
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._probe())
        done, _ = await asyncio.wait({self._pending}, timeout=self._timeout)
        ok = bool(done) and not self._pending.cancelled() and self._pending.exception() is None
        if done:
            self._pending = None
        await self._set(ok)
        return ok

    async def _set(self, reachable: bool) -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if reachable
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._health.set(name, status)
        if reachable:
            log.info("store_reachable")
        else:
            log.warning("store_unreachable")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a probe must never end the monitor
                log.exception("store_readiness_check_failed")
            await asyncio.sleep(self._interval)
