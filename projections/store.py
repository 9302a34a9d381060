"""Where read models live: an SQLite file or the event store's PostgreSQL schema.

A `ViewStore` hands out transactions over DB-API connections (one per thread) and keeps the
`projection_state` table: each projection's tracked position, written in the same transaction as
its rows (the library's TrackingRecorder pattern), plus its operational state (paused, faulted).
SQL is written once with `?` placeholders; the store translates them for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from projections.connections import (
    Connection,
    Connections,
    PerThreadConnections,
    PooledConnections,
)
from service.store.base import SchemaNotReadyError
from service.store.postgres import PostgresSettings

VIEW_LOCK = 7_260_417_396
"""Advisory lock key held while creating or migrating read-model tables on PostgreSQL."""

INSTALL_SECONDS = 30.0
"""How long creating a projection's tables keeps retrying a locked or unreachable database."""

RUNNING = "running"
PAUSED = "paused"
FAULTED = "faulted"


class ProjectionConflictError(Exception):
    """Raised when the tracked position moved under a batch: it was applied, or reset, elsewhere."""


class ViewUnavailableError(Exception):
    """Raised when the view's database could not be reached; it reconnects on the next call."""


_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def _transient(err: Exception) -> bool:
    """Is `err` a passing fault of the connection (retry), not a broken view (stop)?"""
    if isinstance(err, sqlite3.OperationalError):
        # SQLite reports a missing table as OperationalError too: that one is not passing.
        return any(word in str(err).lower() for word in _SQLITE_TRANSIENT)
    return True


@dataclass(frozen=True)
class ProjectionState:
    """A projection's row in `projection_state`."""

    name: str
    version: int
    position: int
    start_position: int
    status: str
    error: str
    updated_at: str

    @property
    def paused(self) -> bool:
        """Has an operator paused it?"""
        return self.status == PAUSED


class ViewTransaction:
    """One transaction on a view store; SQL uses `?` placeholders on both dialects."""

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cursor = cursor
        self.dialect = dialect
        self.progress: dict[str, tuple[int, int]] = {}
        """Per projection applied in this process: (its position, its tracked position) as
        they were when this transaction began (see `position`)."""

    def _sql(self, statement: str) -> str:
        return statement if self.dialect == "sqlite" else statement.replace("?", "%s")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        self._cursor.execute(self._sql(statement), tuple(params))
        return int(self._cursor.rowcount)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""
        if rows:
            self._cursor.executemany(self._sql(statement), [tuple(r) for r in rows])

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return every row."""
        self._cursor.execute(self._sql(statement), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    def fetchone(self, statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a query and return its first row, if any."""
        rows = self.fetchall(statement, params)
        return rows[0] if rows else None

    def state(self, name: str) -> ProjectionState | None:
        """A projection's state row."""
        row = self.fetchone(
            "SELECT name, version, position, start_position, status, error, updated_at "
            "FROM projection_state WHERE name = ?",
            (name,),
        )
        if row is None:
            return None
        return ProjectionState(
            name=row[0],
            version=int(row[1]),
            position=int(row[2]),
            start_position=int(row[3]),
            status=row[4],
            error=row[5],
            updated_at=row[6],
        )

    def position(self, name: str) -> int:
        """The log position a projection's rows in this snapshot reflect.

        That is the tracked position, or further when the runner in this process has since
        moved past events that are not its own without writing the position yet (rows then
        unchanged, so they reflect that position too).
        """
        row = self.fetchone("SELECT position FROM projection_state WHERE name = ?", (name,))
        tracked = int(row[0]) if row else 0
        position, persisted = self.progress.get(name, (tracked, tracked))
        return max(tracked, position) if tracked == persisted else tracked

    def advance(self, name: str, *, previous: int, position: int) -> None:
        """Move a projection from `previous` to `position`, or raise if it is elsewhere."""
        changed = self.execute(
            "UPDATE projection_state SET position = ? WHERE name = ? AND position = ?",
            (position, name, previous),
        )
        if changed != 1:
            msg = f"{name} is no longer at position {previous}: the batch was applied or reset"
            raise ProjectionConflictError(msg)

    def set_status(self, name: str, status: str, error: str = "") -> None:
        """Record a projection's status (running, paused, faulted) and error."""
        self.execute(
            "UPDATE projection_state SET status = ?, error = ?, updated_at = ? WHERE name = ?",
            (status, error, _now(), name),
        )


_STATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS projection_state ("
    "name TEXT PRIMARY KEY, version INTEGER NOT NULL, position BIGINT NOT NULL, "
    "start_position BIGINT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL, "
    "updated_at TEXT NOT NULL)"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ViewStore:
    """Transactions on the read models' database, over connections lent by `connections`."""

    def __init__(
        self,
        connections: Connections | Callable[[], Connection],
        dialect: str,
        *,
        ddl_lock: str = "",
        begin_write: str = "BEGIN",
        migrate: bool = True,
    ) -> None:
        self._connections: Connections = (
            PerThreadConnections(connections) if callable(connections) else connections
        )
        self.dialect = dialect
        self.migrate = migrate
        """Create and migrate projection tables on install; when off, only check them."""
        self._ddl_lock = ddl_lock
        self._begin_write = begin_write
        self._write_lock = threading.Lock()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[ViewTransaction]:
        """A transaction: committed on success, rolled back on any error.

        A lost connection is replaced, and reported as ViewUnavailableError (try again).
        """
        # Runners of one process take turns writing an SQLite file here, instead of waiting in
        # SQLite's busy handler (which sleeps in steps of up to 100 ms).
        serialised = self._write_lock if write and self.dialect == "sqlite" else nullcontext()
        try:
            with serialised, self._connections.lease() as conn:
                try:
                    cursor = conn.cursor()
                    if self.dialect == "sqlite":
                        cursor.execute(self._begin_write if write else "BEGIN")
                    elif not write:
                        # Rows and the position they reflect come from one snapshot.
                        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    yield ViewTransaction(cursor, self.dialect)
                    conn.commit()
                except _CONNECTION_ERRORS as err:
                    if not _transient(err):
                        _rollback(conn)
                        raise
                    self._connections.discard(conn)
                    raise
                except BaseException:
                    _rollback(conn)
                    raise
        except _CONNECTION_ERRORS as err:
            if not _transient(err):
                raise
            raise ViewUnavailableError(str(err)) from err

    def install(
        self, name: str, version: int, schema: Sequence[str], tables: Sequence[str]
    ) -> None:
        """Create a projection's tables; drop and recreate them when its version changed.

        A projection whose code changed the meaning of its rows bumps its version, and its model
        is rebuilt from the start of the log. A server and a worker starting together on one
        SQLite file may find it locked for a moment: that is retried for INSTALL_SECONDS.
        """
        deadline = time.monotonic() + INSTALL_SECONDS
        while True:
            try:
                self._install(name, version, schema, tables)
            except ViewUnavailableError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
            else:
                return

    def _install(
        self, name: str, version: int, schema: Sequence[str], tables: Sequence[str]
    ) -> None:
        if not self.migrate:
            self._check_installed(name, version)
            return
        with self.transaction() as tx:
            if self._ddl_lock:
                # Servers and workers may start together: create tables one at a time.
                tx.execute(self._ddl_lock)
            tx.execute(_STATE_TABLE)
            state = tx.state(name)
            if state is not None and state.version != version:
                for table in tables:
                    tx.execute(f"DROP TABLE IF EXISTS {table}")
                tx.execute("DELETE FROM projection_state WHERE name = ?", (name,))
                state = None
            for statement in schema:
                tx.execute(statement)
            if state is None:
                tx.execute(
                    "INSERT INTO projection_state VALUES (?, ?, 0, 0, ?, '', ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, version, RUNNING, _now()),
                )

    def _check_installed(self, name: str, version: int) -> None:
        """Raise SchemaNotReadyError unless the projection's tables are at `version`."""
        try:
            with self.transaction(write=False) as tx:
                state = tx.state(name)
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
            state = None  # no projection_state table yet
        if state is None or state.version != version:
            found = "not installed" if state is None else f"at version {state.version}"
            msg = (
                f"the read model {name} is {found}, this code needs version {version}: run "
                "`incident-registry-server migrate` (or start with INCIDENTS_MIGRATE_ON_START=true)"
            )
            raise SchemaNotReadyError(msg)

    def state(self, name: str) -> ProjectionState:
        """A projection's current state."""
        with self.transaction(write=False) as tx:
            state = tx.state(name)
        if state is None:
            msg = f"projection {name} is not installed"
            raise LookupError(msg)
        return state

    def reset(self, name: str, tables: Sequence[str], position: int) -> None:
        """Empty a projection's tables and make it start again after `position`."""
        with self.transaction() as tx:
            # The state row first: its lock waits for a page in flight to commit, so that the
            # DELETEs below (on PostgreSQL, each statement its own snapshot) see its new rows.
            tx.execute(
                "UPDATE projection_state SET position = ?, start_position = ?, status = ?, "
                "error = '', updated_at = ? WHERE name = ?",
                (position, position, RUNNING, _now(), name),
            )
            for table in tables:
                tx.execute(f"DELETE FROM {table}")  # noqa: S608 - table names are the code's own

    def set_status(self, name: str, status: str, error: str = "") -> None:
        """Record a projection's status and error in a transaction of its own."""
        with self.transaction() as tx:
            tx.set_status(name, status, error)

    def pool_stats(self) -> dict[str, int] | None:
        """The connection pool's statistics now (psycopg_pool's `get_stats`: `pool_size`,
        `pool_available`, `pool_max`, `requests_waiting`, ...); None when not pooled."""
        if isinstance(self._connections, PooledConnections):
            return self._connections.pool.get_stats()
        return None

    def close(self) -> None:
        """Close every connection this store opened."""
        self._connections.close()


def _rollback(conn: Connection) -> None:
    with contextlib.suppress(*_CONNECTION_ERRORS):
        conn.rollback()


def sqlite_store(path: Path, *, migrate: bool = True) -> ViewStore:
    """Read models in their own SQLite file (they never contend with the log's writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def connect() -> Connection:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # Rows and position commit together, and a model can be rebuilt from the log: a
        # commit lost to a power cut only moves the position back, so no fsync per batch.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    # Writers take the lock up front: several projections share the file, and a read
    # transaction upgraded to a write after another commit would fail with SQLITE_BUSY.
    return ViewStore(connect, "sqlite", begin_write="BEGIN IMMEDIATE", migrate=migrate)


def view_application_name(schema: str) -> str:
    """The application_name of the read models' PostgreSQL sessions for `schema`."""
    return f"incident-registry views {schema}"[:63]


def postgres_store(settings: PostgresSettings, *, migrate: bool = True) -> ViewStore:
    """Read models in the event store's PostgreSQL schema, over a bounded connection pool."""
    conninfo = psycopg.conninfo.make_conninfo(
        host=settings.host,
        port=settings.port,
        dbname=settings.dbname,
        user=settings.user,
        password=settings.password,
        connect_timeout=max(1, round(settings.connect_timeout)),
        options=f"-c search_path={settings.schema}",
        # Shown in pg_stat_activity, so that a DBA can tell the read models' sessions apart.
        application_name=view_application_name(settings.schema),
    )
    connections = PooledConnections(
        conninfo,
        min_size=1,
        max_size=settings.pool_size + settings.max_overflow,
        timeout=settings.connect_timeout,
        name="views",
    )
    return ViewStore(
        connections,
        "postgres",
        ddl_lock=f"SELECT pg_advisory_xact_lock({VIEW_LOCK})",
        migrate=migrate,
    )


def store_for(backend: object, sqlite_path: Path, *, migrate: bool = True) -> ViewStore:
    """The view store that goes with an event store: its own SQLite file, or its schema."""
    from service.store.postgres import PostgresEventStore  # noqa: PLC0415 - avoid a cycle

    if isinstance(backend, PostgresEventStore):
        return postgres_store(backend.settings, migrate=migrate)
    return sqlite_store(sqlite_path, migrate=migrate)
