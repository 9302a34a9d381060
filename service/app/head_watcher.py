"""Waiting, in the event loop, for the log to grow past a position."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor

from service.store.base import BackendUnavailableError, EventStoreBackend


class HeadWatcher:
    """Knows the head of the log and wakes coroutines waiting for it to move.

    Commits made through this process's backend arrive at once through its notifier (one
    wake-up per committed batch). Commits made by other processes are found by polling the
    head every `poll_interval` seconds, and only while somebody is waiting.
    """

    def __init__(
        self, backend: EventStoreBackend, reads: Executor, *, poll_interval: float = 0.1
    ) -> None:
        self._backend = backend
        self._reads = reads
        self._poll_interval = poll_interval
        self._head = 0
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._waiting = 0
        self._closing = False

    @property
    def waiting(self) -> int:
        """How many coroutines are waiting for the head to move."""
        return self._waiting

    async def wait_beyond(self, position: int, timeout: float) -> int:
        """Return the head once it is beyond `position`, or the head after `timeout` seconds."""
        self._ensure_started()
        assert self._changed is not None
        self._waiting += 1
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while self._head <= position and not self._closing:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                self._changed.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
                # cancellation of a subscription whose client went away.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
        finally:
            self._waiting -= 1
        return self._head

    def wake_all(self) -> None:
        """Wake every waiting coroutine now, and keep them from waiting again."""
        self._closing = True
        if self._changed is not None:
            self._changed.set()

    def close(self) -> None:
        """Stop listening and polling."""
        if self._token is not None:
            self._backend.notifier.remove(self._token)
            self._token = None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    def _ensure_started(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        loop = self._loop

        def on_commit(head: int) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(self._advance, head)

        self._token = self._backend.notifier.add(on_commit)
        self._poller = loop.create_task(self._poll())

    def _advance(self, head: int) -> None:
        if head > self._head:
            self._head = head
            assert self._changed is not None
            self._changed.set()

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._waiting:
                # A failing database is reported to readers by their own reads; keep polling.
                with contextlib.suppress(BackendUnavailableError):
                    self._advance(await loop.run_in_executor(self._reads, self._backend.head))
            await asyncio.sleep(self._poll_interval)
