"""Commit notifications: who is told, in this process, that the log has grown."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

Listener = Callable[[int], None]


class CommitNotifier:
    """Calls every registered listener with the new head position after each commit.

    Listeners run on the committing thread and must return at once (set an event, or hand
    over to an event loop with `call_soon_threadsafe`). Commits made by other processes are
    not seen here; followers poll for those.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[int, Listener] = {}
        self._next_token = 0

    def add(self, listener: Listener) -> int:
        """Register a listener; return the token that removes it."""
        with self._lock:
            self._next_token += 1
            self._listeners[self._next_token] = listener
            return self._next_token

    def remove(self, token: int) -> None:
        """Unregister a listener (unknown tokens are ignored)."""
        with self._lock:
            self._listeners.pop(token, None)

    def notify(self, head: int) -> None:
        """Tell every listener that the log now reaches `head`."""
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(head)
            except Exception:  # a follower's failure must never fail the commit it follows
                log.exception("commit_listener_failed", head=head)

    def __len__(self) -> int:
        with self._lock:
            return len(self._listeners)
