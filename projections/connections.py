"""How a view store gets its database connections: one per thread, or a bounded pool."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import psycopg
import psycopg_pool


class Connection(Protocol):
    """The DB-API connection calls a view store makes."""

    def cursor(self) -> Any:
        """A new cursor."""

    def commit(self) -> None:
        """Commit the transaction in progress."""

    def rollback(self) -> None:
        """Roll back the transaction in progress."""

    def close(self) -> None:
        """Close the connection."""


class Connections(Protocol):
    """Lends connections for one transaction at a time."""

    def lease(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for the duration of a `with` block (no transaction left open)."""

    def discard(self, conn: Connection) -> None:
        """Throw away a connection that failed; the next lease opens another."""

    def close(self) -> None:
        """Close every connection."""


class PerThreadConnections:
    """One connection per thread, opened on first use and kept (an SQLite file handle)."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[Connection]:
        """This thread's connection."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        yield conn

    def discard(self, conn: Connection) -> None:
        """Close this thread's connection; the next lease opens a new one."""
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()


class PooledConnections:
    """A bounded pool (PostgreSQL): at most `max_size` connections; a lease waits at most
    `timeout` seconds for one and then fails with PoolTimeout (an OperationalError)."""

    def __init__(
        self, conninfo: str, *, min_size: int, max_size: int, timeout: float, name: str
    ) -> None:
        self.pool = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name=name,
            # A connection the server dropped (restart, idle timeout) is replaced on checkout.
            check=psycopg_pool.ConnectionPool.check_connection,
            open=True,
        )

    @contextmanager
    def lease(self) -> Iterator[Connection]:
        """A connection from the pool; returned to it (rolled back if left open) afterwards."""
        conn: psycopg.Connection[Any] = self.pool.getconn()
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    def discard(self, conn: Connection) -> None:
        """Close a failed connection: the pool sees it closed and replaces it."""
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Close the pool and its connections."""
        self.pool.close()
