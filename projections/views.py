"""Statistics views: the projection's tables and its tracked position, on SQLite or PostgreSQL.

Rows and the position they reflect are written in one transaction (the library's
TrackingRecorder pattern), and the position moves only from the value the batch was built on:
a second worker, or a replay after a crash, can never apply the same events twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import psycopg

from projections.statistics import NAME, Bucket, IncidentFacts, Totals
from service.store.postgres import PostgresSettings

VIEW_LOCK = 7_260_417_396
"""Advisory lock key held while creating the statistics tables on PostgreSQL."""


class ProjectionConflictError(Exception):
    """Raised when the tracked position moved under a batch: it was applied elsewhere."""


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
class StatisticsRow:
    """One area and period with its counts."""

    area_kind: str
    area_code: str
    period_kind: str
    period: str
    incidents: int
    killed: int
    injured: int


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS proj_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS proj_incident_facts ("
    "incident_id TEXT PRIMARY KEY, municipality_code TEXT NOT NULL, "
    "police_zone_code TEXT NOT NULL, occurred_at TEXT NOT NULL, "
    "killed BIGINT NOT NULL, injured BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS proj_statistics ("
    "area_kind TEXT NOT NULL, area_code TEXT NOT NULL, period_kind TEXT NOT NULL, "
    "period TEXT NOT NULL, incidents BIGINT NOT NULL, killed BIGINT NOT NULL, "
    "injured BIGINT NOT NULL, PRIMARY KEY (area_kind, area_code, period_kind, period))",
)


class StatisticsView:
    """The statistics tables behind one DB-API connection, used by one thread at a time."""

    def __init__(
        self, connect: Callable[[], _Connection], placeholder: str, ddl_lock: str = ""
    ) -> None:
        self._connect = connect
        self._mark = placeholder
        self._ddl_lock = ddl_lock
        self._lock = threading.Lock()
        self._conn: _Connection | None = connect()
        self._run_ddl()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._mark)

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """A cursor in a transaction: committed on success, rolled back on any error.

        A lost connection is replaced, and reported as ViewUnavailableError (try again).
        """
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                cursor = self._conn.cursor()
                yield cursor
                self._conn.commit()
            except _CONNECTION_ERRORS as err:
                if not _transient(err):
                    self._rollback()
                    raise
                self._drop_connection()
                raise ViewUnavailableError(str(err)) from err
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        with contextlib.suppress(*_CONNECTION_ERRORS):
            if self._conn is not None:
                self._conn.rollback()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def _run_ddl(self) -> None:
        self._create_tables()

    def _create_tables(self) -> None:
        with self._session() as cursor:
            if self._ddl_lock:
                # Servers and workers may start together: create the tables one at a time.
                cursor.execute(self._ddl_lock)
            for statement in _SCHEMA:
                cursor.execute(statement)
            cursor.execute(
                self._sql("INSERT INTO proj_tracking VALUES (?, 0) ON CONFLICT (name) DO NOTHING"),
                (NAME,),
            )

    def position(self) -> int:
        """The last log position the statistics reflect."""
        with self._session() as cursor:
            cursor.execute(self._sql("SELECT position FROM proj_tracking WHERE name = ?"), (NAME,))
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def load_facts(self, incident_ids: Iterable[UUID]) -> dict[UUID, IncidentFacts]:
        """The current facts of the given incidents, where known."""
        ids = [str(i) for i in incident_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._session() as cursor:
            cursor.execute(
                self._sql(f"SELECT * FROM proj_incident_facts WHERE incident_id IN ({marks})"),  # noqa: S608
                ids,
            )
            rows = cursor.fetchall()
        return {
            UUID(row[0]): IncidentFacts(
                municipality_code=row[1],
                police_zone_code=row[2],
                occurred_at=datetime.fromisoformat(row[3]),
                killed=int(row[4]),
                injured=int(row[5]),
            )
            for row in rows
        }

    def commit(
        self,
        *,
        previous: int,
        position: int,
        facts: dict[UUID, IncidentFacts],
        deltas: Iterable[tuple[Bucket, Totals]],
    ) -> None:
        """Write the batch's rows and move the position from `previous`, in one transaction."""
        with self._session() as cursor:
            cursor.execute(
                self._sql("UPDATE proj_tracking SET position = ? WHERE name = ? AND position = ?"),
                (position, NAME, previous),
            )
            if cursor.rowcount != 1:
                msg = f"{NAME} is no longer at position {previous}: the batch was applied"
                raise ProjectionConflictError(msg)
            if facts:
                cursor.executemany(
                    self._sql(
                        "INSERT INTO proj_incident_facts VALUES (?,?,?,?,?,?) "
                        "ON CONFLICT (incident_id) DO UPDATE SET "
                        "municipality_code = excluded.municipality_code, "
                        "police_zone_code = excluded.police_zone_code, "
                        "occurred_at = excluded.occurred_at, "
                        "killed = excluded.killed, injured = excluded.injured"
                    ),
                    [
                        (
                            str(incident_id),
                            f.municipality_code,
                            f.police_zone_code,
                            f.occurred_at.isoformat(),
                            f.killed,
                            f.injured,
                        )
                        for incident_id, f in facts.items()
                    ],
                )
            rows = [
                (
                    b.area_kind,
                    b.area_code,
                    b.period_kind,
                    b.period,
                    t.incidents,
                    t.killed,
                    t.injured,
                )
                for b, t in deltas
            ]
            if rows:
                cursor.executemany(
                    self._sql(
                        "INSERT INTO proj_statistics VALUES (?,?,?,?,?,?,?) "
                        "ON CONFLICT (area_kind, area_code, period_kind, period) DO UPDATE SET "
                        "incidents = proj_statistics.incidents + excluded.incidents, "
                        "killed = proj_statistics.killed + excluded.killed, "
                        "injured = proj_statistics.injured + excluded.injured"
                    ),
                    rows,
                )

    def query(
        self,
        area_kind: str,
        area_codes: Sequence[str],
        period_kind: str,
        from_period: str,
        to_period: str,
    ) -> list[StatisticsRow]:
        """Rows of one area kind and period kind, optionally limited to areas and a range."""
        statement = "SELECT * FROM proj_statistics WHERE area_kind = ? AND period_kind = ?"
        params: list[Any] = [area_kind, period_kind]
        if area_codes:
            statement += f" AND area_code IN ({','.join('?' * len(area_codes))})"
            params.extend(area_codes)
        if from_period:
            statement += " AND period >= ?"
            params.append(from_period)
        if to_period:
            statement += " AND period <= ?"
            params.append(to_period)
        statement += " AND incidents > 0 ORDER BY area_code, period"
        with self._session() as cursor:
            cursor.execute(self._sql(statement), params)
            rows = cursor.fetchall()
        return [
            StatisticsRow(
                area_kind=row[0],
                area_code=row[1],
                period_kind=row[2],
                period=row[3],
                incidents=int(row[4]),
                killed=int(row[5]),
                injured=int(row[6]),
            )
            for row in rows
        ]

    def reset(self) -> None:
        """Forget everything, so the projection is rebuilt from the start of the log."""
        with self._session() as cursor:
            cursor.execute("DELETE FROM proj_statistics")
            cursor.execute("DELETE FROM proj_incident_facts")
            cursor.execute(
                self._sql("UPDATE proj_tracking SET position = 0 WHERE name = ?"), (NAME,)
            )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop_connection()


def sqlite_view(path: Path) -> StatisticsView:
    """Statistics in their own SQLite file (read models never contend with the log's writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def connect() -> _Connection:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        # Rows and position commit together, and the model can be rebuilt from the log: a
        # commit lost to a power cut only moves the position back, so no fsync per batch.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return StatisticsView(connect, "?")


def postgres_view(settings: PostgresSettings) -> StatisticsView:
    """Statistics in the event store's PostgreSQL schema."""

    def connect() -> _Connection:
        return psycopg.connect(
            host=settings.host,
            port=settings.port,
            dbname=settings.dbname,
            user=settings.user,
            password=settings.password,
            connect_timeout=int(settings.connect_timeout),
            options=f"-c search_path={settings.schema}",
        )

    return StatisticsView(connect, "%s", ddl_lock=f"SELECT pg_advisory_xact_lock({VIEW_LOCK})")


def view_for(backend: object, sqlite_path: Path) -> StatisticsView:
    """The statistics view that goes with an event store: its own SQLite file, or its schema."""
    from service.store.postgres import PostgresEventStore  # noqa: PLC0415 - avoid a cycle

    if isinstance(backend, PostgresEventStore):
        return postgres_view(backend.settings)
    return sqlite_view(sqlite_path)
