"""Following the SQLite log: the library's subscription, woken by commits instead of LISTEN.

The library's PostgreSQL subscription is woken by LISTEN/NOTIFY. SQLite has no such channel,
so a subscription here is woken two ways: at once by commits made in this process (through
the recorder's notifier), and within `poll_interval` seconds by commits made by other
processes (a watcher thread compares the head, one cheap query per interval). Neither spins.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import ListenNotifySubscription

if TYPE_CHECKING:
    from service.store.sqlite import RegistrySQLiteRecorder

DEFAULT_POLL_INTERVAL = 0.1


class SQLiteSubscription(ListenNotifySubscription[Any]):
    """An iterator of the notifications after `gt`, then of new ones as they are committed."""

    def __init__(
        self,
        recorder: RegistrySQLiteRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._stopping = threading.Event()
        self._sqlite_recorder = recorder
        self._token = recorder.notifier.add(self._on_commit)
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._watch_thread = threading.Thread(target=self._watch, daemon=True)
        self._watch_thread.start()

    def _on_commit(self, _head: int) -> None:
        self._has_been_notified.set()

    def _watch(self) -> None:
        recorder = self._sqlite_recorder
        # Nothing is taken as seen at first: a commit by another process between the first
        # read and the watcher's start must still wake the subscription.
        seen: int | None = None
        try:
            while not self._stopping.wait(recorder.poll_interval):
                head = recorder.max_notification_id() or 0
                if head != seen:
                    seen = head
                    self._has_been_notified.set()
        except BaseException as err:  # reported to the iterating thread, like the pull thread
            if self._thread_error is None:
                self._thread_error = err
            self.stop()

    def stop(self) -> None:
        """Stop following: wake the iterating thread and end the watcher."""
        self._stopping.set()
        self._sqlite_recorder.notifier.remove(self._token)
        super().stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._watch_thread.join()
