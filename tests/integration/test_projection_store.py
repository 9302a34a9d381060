"""The view store contract, on SQLite and on PostgreSQL.

One suite, run against both stores: a projection's rows and its tracked position are written in
one transaction, the position moves only from the value a page was built on (exactly once),
install and reset manage one projection's tables and state without touching another's, and a
crash in the middle of a commit leaves no trace, after which the runner resumes to the same rows
as a clean rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import psycopg
import pytest

from projections.base import Projection, Recorded
from projections.statistics import AREA_KINDS, NAME, PERIOD_KINDS, Bucket, IncidentFacts, Totals
from projections.statistics_model import (
    StatisticsProjection,
    StatisticsRow,
    load_facts,
    query_statistics,
    write_deltas,
    write_facts,
)
from projections.store import (
    FAULTED,
    PAUSED,
    RUNNING,
    ProjectionConflictError,
    ViewStore,
    ViewTransaction,
    ViewUnavailableError,
    postgres_store,
    sqlite_store,
)
from service.app.commands import AmendIncident, RegisterGang, ReportShooting, ReviseCasualties
from service.app.registry import Registry
from service.app.results import WriteContext
from service.areas import load_catalog
from service.domain.values import TimePrecision
from service.store.base import EventStoreBackend
from service.store.postgres import PostgresEventStore, PostgresSettings
from service.store.sqlite import SQLiteEventStore
from tests.support.postgres import fresh_schema
from tests.support.projections import run_to_head, runner_for, statistics_table

REPO = Path(__file__).resolve().parents[2]
BRUSSELS = load_catalog("brussels")
STATISTICS = StatisticsProjection(BRUSSELS)
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
WHEN = datetime(2024, 5, 31, 8, 0, tzinfo=UTC)
ANDERLECHT, MIDI = "21001", "5341"
BRUXELLES = "21004"

Location = Path | PostgresSettings


class Notes(Projection):
    """Notes of one version: a second projection sharing the store with the statistics."""

    name: ClassVar[str] = "notes"
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = ("GangRegistered",)
    tables: ClassVar[tuple[str, ...]] = ("test_notes",)
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS test_notes (position BIGINT PRIMARY KEY, note TEXT NOT NULL)",
    )

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        tx.executemany(
            "INSERT INTO test_notes VALUES (?, ?)", [(e.position, e.event_type) for e in events]
        )


class NotesV2(Notes):
    """Notes whose rows changed meaning: a new column."""

    version: ClassVar[int] = 2
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS test_notes ("
        "position BIGINT PRIMARY KEY, note TEXT NOT NULL, author TEXT NOT NULL)",
    )


class Stores:
    """Opens view stores of one kind, on fresh storage or on storage already in use."""

    def __init__(self, kind: str, tmp_path: Path, postgres: Callable[[], PostgresSettings]):
        self.kind = kind
        self._tmp_path = tmp_path
        self._postgres = postgres
        self._stack = contextlib.ExitStack()

    def storage(self) -> Location:
        """Somewhere new to keep read models: an SQLite file, or an empty PostgreSQL schema."""
        if self.kind == "sqlite":
            return self._tmp_path / f"views-{uuid4().hex[:8]}.sqlite"
        return self._stack.enter_context(fresh_schema(self._postgres()))

    def open(self, location: Location, wrap: Callable[[Any], Any] | None = None) -> ViewStore:
        """A store on `location`, its connections optionally wrapped (to inject failures)."""
        store = sqlite_store(location) if isinstance(location, Path) else postgres_store(location)
        if wrap is not None:
            # Failures are injected below the store: each connection is wrapped when first lent.
            store._connections = _WrappedConnections(store._connections, wrap)  # noqa: SLF001
        self._stack.callback(store.close)
        return store

    def new(self) -> ViewStore:
        """A store on fresh storage, with the statistics projection installed."""
        store = self.open(self.storage())
        install(store, STATISTICS)
        return store

    def registry(self) -> Registry:
        """A registry with a fixed clock on a new event log of the same kind as the stores."""
        backend: EventStoreBackend
        if self.kind == "sqlite":
            backend = SQLiteEventStore(str(self._tmp_path / f"log-{uuid4().hex[:8]}.sqlite"))
        else:
            backend = PostgresEventStore(self._stack.enter_context(fresh_schema(self._postgres())))
        registry = Registry(backend, BRUSSELS, clock=lambda: NOW)
        self._stack.callback(registry.close)
        return registry

    def admin(self) -> psycopg.Connection[Any]:
        """A connection to the PostgreSQL server, to watch and disturb the stores' sessions."""
        server = self._postgres()
        return psycopg.connect(
            host=server.host,
            port=server.port,
            dbname=server.dbname,
            user=server.user,
            password=server.password,
            autocommit=True,
        )

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    opener = Stores(request.param, tmp_path, lambda: request.getfixturevalue("postgres"))
    yield opener
    opener.close()


# --- Helpers ------------------------------------------------------------------------------


def install(store: ViewStore, projection: Projection) -> None:
    store.install(projection.name, projection.version, projection.schema, projection.tables)


def commit(
    store: ViewStore,
    *,
    previous: int,
    position: int,
    facts: dict[UUID, IncidentFacts] | None = None,
    deltas: Sequence[tuple[Bucket, Totals]] = (),
) -> None:
    """Write a statistics page as the runner does: position first, then rows, one transaction."""
    with store.transaction() as tx:
        tx.advance(NAME, previous=previous, position=position)
        write_facts(tx, facts or {})
        write_deltas(tx, deltas)


def query(store: ViewStore, *args: Any, **kwargs: Any) -> list[StatisticsRow]:
    with store.transaction(write=False) as tx:
        return query_statistics(tx, *args, **kwargs)


def _everything(tx: ViewTransaction) -> list[StatisticsRow]:
    return [
        row
        for area_kind in AREA_KINDS
        for period_kind in PERIOD_KINDS
        for row in query_statistics(tx, area_kind, [], period_kind)
    ]


def everything(store: ViewStore) -> list[StatisticsRow]:
    """Every statistics row, over all area kinds and period kinds."""
    with store.transaction(write=False) as tx:
        return _everything(tx)


def facts_of(store: ViewStore, ids: Sequence[UUID]) -> dict[UUID, IncidentFacts]:
    with store.transaction(write=False) as tx:
        return load_facts(tx, ids)


def snapshot(store: ViewStore, ids: Sequence[UUID]) -> tuple[int, list[StatisticsRow], Any]:
    """What a commit may change (position, rows and incident facts), read in one snapshot."""
    with store.transaction(write=False) as tx:
        return tx.position(NAME), _everything(tx), load_facts(tx, ids)


def notes(store: ViewStore) -> list[tuple[Any, ...]]:
    with store.transaction(write=False) as tx:
        return tx.fetchall("SELECT position, note FROM test_notes ORDER BY position")


def bucket(code: str, period_kind: str = "day", period: str = "2024-05-31") -> Bucket:
    kind = "police_zone" if code in BRUSSELS.police_zones else "municipality"
    return Bucket(kind, code, period_kind, period)


def facts(municipality: str = ANDERLECHT, killed: int = 0, injured: int = 1) -> IncidentFacts:
    return IncidentFacts(municipality, BRUSSELS.zone_of(municipality), WHEN, killed, injured)


def row(code: str, period: str, counts: tuple[int, int, int], period_kind: str = "day"):
    b = bucket(code, period_kind, period)
    return StatisticsRow(b.area_kind, b.area_code, b.period_kind, b.period, *counts)


# --- Commit and query ---------------------------------------------------------------------


def test_a_new_projection_is_empty_at_position_zero_and_running(stores):
    store = stores.new()
    state = store.state(NAME)
    assert (state.name, state.version, state.position, state.start_position) == (NAME, 1, 0, 0)
    assert (state.status, state.error, state.paused) == (RUNNING, "", False)
    assert everything(store) == []
    assert facts_of(store, [uuid4()]) == {}
    assert facts_of(store, []) == {}


def test_commit_then_query_returns_the_rows_in_order_with_filters(stores):
    store = stores.new()
    commit(
        store,
        previous=0,
        position=7,
        deltas=[
            (bucket(BRUXELLES, "day", "2024-05-31"), Totals(2, 1, 3)),
            (bucket(ANDERLECHT, "day", "2024-06-01"), Totals(1, 0, 0)),
            (bucket(ANDERLECHT, "day", "2024-05-30"), Totals(1, 1, 1)),
            (bucket(MIDI, "day", "2024-05-30"), Totals(1, 1, 1)),
            (bucket(ANDERLECHT, "month", "2024-05"), Totals(1, 1, 1)),
        ],
    )

    assert query(store, "municipality", [], "day") == [
        row(ANDERLECHT, "2024-05-30", (1, 1, 1)),
        row(ANDERLECHT, "2024-06-01", (1, 0, 0)),
        row(BRUXELLES, "2024-05-31", (2, 1, 3)),
    ]
    # Area codes, and an inclusive range of periods.
    assert query(store, "municipality", [BRUXELLES], "day") == [
        row(BRUXELLES, "2024-05-31", (2, 1, 3)),
    ]
    assert query(
        store, "municipality", [], "day", from_period="2024-05-31", to_period="2024-06-01"
    ) == [
        row(ANDERLECHT, "2024-06-01", (1, 0, 0)),
        row(BRUXELLES, "2024-05-31", (2, 1, 3)),
    ]
    assert query(store, "municipality", [ANDERLECHT, "21099"], "day", to_period="2024-05-31") == [
        row(ANDERLECHT, "2024-05-30", (1, 1, 1)),
    ]
    # Area kinds and period kinds are separate.
    assert query(store, "police_zone", [], "day") == [row(MIDI, "2024-05-30", (1, 1, 1))]
    assert query(store, "municipality", [], "month") == [
        row(ANDERLECHT, "2024-05", (1, 1, 1), "month")
    ]
    assert query(store, "municipality", [], "week") == []
    assert store.state(NAME).position == 7


def test_commits_add_up_and_rows_left_without_incidents_are_not_served(stores):
    store = stores.new()
    commit(
        store,
        previous=0,
        position=3,
        deltas=[(bucket(ANDERLECHT), Totals(1, 0, 1)), (bucket(BRUXELLES), Totals(1, 1, 0))],
    )
    commit(
        store,
        previous=3,
        position=5,
        deltas=[
            (bucket(ANDERLECHT), Totals(2, 2, 0)),
            (bucket(BRUXELLES), Totals(-1, -1, 0)),  # moved away by an amendment
        ],
    )
    assert everything(store) == [row(ANDERLECHT, "2024-05-31", (3, 2, 1))]


def test_incident_facts_round_trip_and_are_replaced(stores):
    store = stores.new()
    first, second = uuid4(), uuid4()
    elsewhere = WHEN.astimezone(timezone(timedelta(hours=-4)))  # the same instant
    commit(
        store,
        previous=0,
        position=2,
        facts={
            first: facts(ANDERLECHT, 0, 1),
            second: dataclasses.replace(facts(BRUXELLES), occurred_at=elsewhere),
        },
    )
    loaded = facts_of(store, [first, second, uuid4()])
    assert loaded == {first: facts(ANDERLECHT, 0, 1), second: facts(BRUXELLES)}
    assert all(f.occurred_at.utcoffset() is not None for f in loaded.values())

    commit(store, previous=2, position=3, facts={first: facts(BRUXELLES, 1, 0)})
    assert facts_of(store, [first]) == {first: facts(BRUXELLES, 1, 0)}


def test_rows_position_and_status_survive_reopening(stores):
    location = stores.storage()
    store = stores.open(location)
    install(store, STATISTICS)
    incident = uuid4()
    commit(
        store,
        previous=0,
        position=4,
        facts={incident: facts()},
        deltas=[(bucket(MIDI), Totals(1, 0, 1))],
    )
    store.set_status(NAME, PAUSED)
    before = store.state(NAME)
    store.close()

    again = stores.open(location)
    install(again, STATISTICS)  # what every start does: the tables exist, nothing changes
    assert again.state(NAME) == before
    assert everything(again) == [row(MIDI, "2024-05-31", (1, 0, 1))]
    assert facts_of(again, [incident]) == {incident: facts()}


# --- Install: versions, and projections side by side -------------------------------------


def test_install_is_idempotent(stores):
    store = stores.new()
    commit(store, previous=0, position=5, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    store.set_status(NAME, FAULTED, "at position 5: boom")
    before = store.state(NAME)

    install(store, STATISTICS)
    install(store, STATISTICS)
    # Neither the rows, nor the position, nor an operator's verdict are touched.
    assert store.state(NAME) == before
    assert everything(store) == [row(MIDI, "2024-05-31", (1, 0, 0))]


def test_a_version_bump_drops_the_tables_and_restarts_at_zero(stores):
    store = stores.new()
    install(store, Notes())
    commit(store, previous=0, position=6, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    store.reset("notes", Notes.tables, 3)
    with store.transaction() as tx:
        tx.advance("notes", previous=3, position=6)
        tx.execute("INSERT INTO test_notes VALUES (?, ?)", (4, "GangRegistered"))
    store.set_status("notes", FAULTED, "at position 6: boom")
    assert store.state("notes").start_position == 3
    statistics_before = store.state(NAME)

    install(store, NotesV2())

    state = store.state("notes")
    assert (state.version, state.position, state.start_position) == (2, 0, 0)
    assert (state.status, state.error) == (RUNNING, "")
    # The table was dropped and created again from the new schema: it has the new column.
    assert notes(store) == []
    with store.transaction() as tx:
        tx.execute("INSERT INTO test_notes VALUES (?, ?, ?)", (1, "GangRegistered", "a"))
    assert notes(store) == [(1, "GangRegistered")]
    # The other projection sharing the store is untouched.
    assert store.state(NAME) == statistics_before
    assert everything(store) == [row(MIDI, "2024-05-31", (1, 0, 0))]


def test_each_projection_tracks_its_own_position(stores):
    store = stores.new()
    install(store, Notes())
    commit(store, previous=0, position=8)
    # The notes are still at 0: a page of theirs goes from 0, not from the statistics' 8.
    with pytest.raises(ProjectionConflictError), store.transaction() as tx:
        tx.advance("notes", previous=8, position=9)
    with store.transaction() as tx:
        tx.advance("notes", previous=0, position=3)
    assert (store.state(NAME).position, store.state("notes").position) == (8, 3)


def test_the_state_of_a_projection_never_installed_is_a_lookup_error(stores):
    store = stores.new()
    with pytest.raises(LookupError, match="nowhere"):
        store.state("nowhere")


# --- Status -------------------------------------------------------------------------------


def test_status_and_error_round_trip(stores):
    store = stores.new()
    installed = datetime.fromisoformat(store.state(NAME).updated_at)

    store.set_status(NAME, PAUSED)
    paused = store.state(NAME)
    assert (paused.status, paused.error, paused.paused) == (PAUSED, "", True)
    assert datetime.fromisoformat(paused.updated_at) >= installed

    store.set_status(NAME, FAULTED, "at position 12: RuntimeError: boom")
    faulted = store.state(NAME)
    assert (faulted.status, faulted.error, faulted.paused) == (
        FAULTED,
        "at position 12: RuntimeError: boom",
        False,
    )

    store.set_status(NAME, RUNNING)
    assert (store.state(NAME).status, store.state(NAME).error) == (RUNNING, "")


def test_a_status_set_in_a_failed_transaction_is_rolled_back(stores):
    store = stores.new()
    with pytest.raises(ProjectionConflictError), store.transaction() as tx:  # noqa: PT012
        tx.set_status(NAME, PAUSED)
        tx.advance(NAME, previous=5, position=6)  # fails: the status goes with it
    assert store.state(NAME).status == RUNNING


# --- Position tracking: exactly once ------------------------------------------------------


def test_the_position_moves_only_from_previous(stores):
    store = stores.new()
    commit(store, previous=0, position=5)
    assert store.state(NAME).position == 5
    commit(store, previous=5, position=9, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert store.state(NAME).position == 9
    with pytest.raises(ProjectionConflictError):
        commit(store, previous=5, position=12)
    assert store.state(NAME).position == 9


def test_a_commit_with_a_stale_previous_raises_and_changes_nothing(stores):
    location = stores.storage()
    worker, rival = stores.open(location), stores.open(location)
    install(worker, STATISTICS)
    install(rival, STATISTICS)
    incident = uuid4()
    batch = {
        "previous": 0,
        "position": 6,
        "facts": {incident: facts(killed=1)},
        "deltas": [(bucket(ANDERLECHT), Totals(1, 1, 1)), (bucket(MIDI), Totals(1, 1, 1))],
    }
    commit(worker, **batch)
    before = snapshot(worker, [incident])

    # A second worker that built the same batch from position 0 cannot apply it again...
    with pytest.raises(ProjectionConflictError):
        commit(rival, **batch)
    # ...nor can the first worker replay it (as after a lost acknowledgement)...
    with pytest.raises(ProjectionConflictError):
        commit(worker, **batch)
    # ...nor a batch with other content built on the stale position.
    with pytest.raises(ProjectionConflictError):
        commit(
            rival,
            previous=0,
            position=8,
            facts={incident: facts(BRUXELLES, killed=5)},
            deltas=[(bucket(BRUXELLES), Totals(4, 4, 4))],
        )

    assert snapshot(worker, [incident]) == before
    assert snapshot(rival, [incident]) == before
    assert everything(rival) == [
        row(ANDERLECHT, "2024-05-31", (1, 1, 1)),
        row(MIDI, "2024-05-31", (1, 1, 1)),
    ]
    # The stores still work after the failed commits: the next batch goes from 6.
    commit(rival, previous=6, position=7, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert worker.state(NAME).position == 7
    assert query(worker, "police_zone", [], "day") == [row(MIDI, "2024-05-31", (2, 1, 1))]


def test_a_read_transaction_sees_one_snapshot(stores):
    location = stores.storage()
    reader, writer = stores.open(location), stores.open(location)
    install(writer, STATISTICS)
    commit(writer, previous=0, position=2, deltas=[(bucket(MIDI), Totals(1, 0, 0))])

    with reader.transaction(write=False) as tx:
        first = tx.position(NAME), _everything(tx)
        # Another connection commits a page while the read is in progress.
        commit(writer, previous=2, position=4, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
        assert (tx.position(NAME), _everything(tx)) == first
    assert reader.state(NAME).position == 4
    assert everything(reader) == [row(MIDI, "2024-05-31", (2, 0, 0))]


# --- Reset --------------------------------------------------------------------------------


def test_reset_empties_the_tables_and_it_starts_again_from_zero(stores):
    store = stores.new()
    incident = uuid4()
    commit(
        store,
        previous=0,
        position=9,
        facts={incident: facts()},
        deltas=[(bucket(MIDI), Totals(1, 0, 1))],
    )
    store.reset(NAME, STATISTICS.tables, 0)
    assert store.state(NAME).position == 0
    assert everything(store) == []
    assert facts_of(store, [incident]) == {}
    commit(store, previous=0, position=2, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert everything(store) == [row(MIDI, "2024-05-31", (1, 0, 0))]


def test_reset_to_a_position_starts_there_and_clears_a_fault(stores):
    store = stores.new()
    install(store, Notes())
    commit(store, previous=0, position=9, deltas=[(bucket(MIDI), Totals(1, 0, 1))])
    with store.transaction() as tx:
        tx.execute("INSERT INTO test_notes VALUES (?, ?)", (4, "GangRegistered"))
    store.set_status(NAME, FAULTED, "at position 9: RuntimeError: boom")

    store.reset(NAME, STATISTICS.tables, 42)

    state = store.state(NAME)
    assert (state.position, state.start_position, state.status, state.error) == (
        42,
        42,
        RUNNING,
        "",
    )
    assert everything(store) == []
    assert notes(store) == [(4, "GangRegistered")]  # not the statistics' table
    # The next page goes from 42.
    with pytest.raises(ProjectionConflictError):
        commit(store, previous=9, position=50)
    commit(store, previous=42, position=50, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert everything(store) == [row(MIDI, "2024-05-31", (1, 0, 0))]


def test_a_reset_during_a_page_in_flight_leaves_none_of_its_rows(stores):
    # A worker is committing a page when an operator resets the projection: the reset waits
    # for the page, and leaves none of its rows (the runner would apply them again).
    location = stores.storage()
    worker, operator = stores.open(location), stores.open(location)
    install(worker, STATISTICS)
    commit(worker, previous=0, position=3, deltas=[(bucket(ANDERLECHT), Totals(1, 0, 1))])

    resetter = threading.Thread(target=operator.reset, args=(NAME, STATISTICS.tables, 0))
    with worker.transaction() as tx:
        tx.advance(NAME, previous=3, position=6)
        write_deltas(tx, [(bucket(BRUXELLES), Totals(1, 1, 0))])  # a new row
        resetter.start()
        wait_until_blocked(stores, tx, resetter)
    resetter.join(timeout=10)
    assert not resetter.is_alive()

    assert worker.state(NAME).position == 0
    assert everything(worker) == []


def wait_until_blocked(stores: Stores, tx: ViewTransaction, thread: threading.Thread) -> None:
    """Return once `thread` waits for the transaction `tx` (PostgreSQL) or soon after (SQLite)."""
    if stores.kind == "sqlite":
        # SQLite serialises writers: the outcome is the same whether it started waiting or not.
        thread.join(timeout=0.1)
        return
    pid = tx.fetchone("SELECT pg_backend_pid()")
    assert pid is not None
    deadline = time.monotonic() + 5
    with stores.admin() as admin:
        while time.monotonic() < deadline:
            blocked = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                [pid[0]],
            ).fetchone()
            if blocked and blocked[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the reset never waited for the page in flight")


# --- Connections --------------------------------------------------------------------------


def test_the_stores_are_really_sqlite_and_postgresql(stores):
    # Guard: the suite really runs on both databases.
    location = stores.storage()
    store = stores.open(location)
    assert store.dialect == stores.kind
    with store.transaction(write=False) as tx:
        if isinstance(location, Path):
            assert tx.fetchone("SELECT sqlite_version()") is not None
            assert location.exists()
        else:
            assert tx.fetchone("SELECT current_schema()") == (location.schema,)


def test_a_broken_query_is_not_mistaken_for_a_lost_connection(stores):
    store = stores.new()
    broken = sqlite3.OperationalError if stores.kind == "sqlite" else psycopg.errors.UndefinedTable
    with pytest.raises(broken), store.transaction(write=False) as tx:
        tx.fetchall("SELECT * FROM no_such_table")
    # The transaction was rolled back and the same store goes on.
    commit(store, previous=0, position=1)
    assert store.state(NAME).position == 1


def test_a_lost_connection_is_replaced(stores):
    faults = Faults()
    store = stores.open(stores.storage(), wrap=faults.wrap)
    install(store, STATISTICS)
    commit(store, previous=0, position=2)

    if stores.kind == "sqlite":
        # No server to lose: the driver reports an I/O failure, which the caller is told of
        # as ViewUnavailableError (try again), and the connection is dropped.
        faults.lose_next = True
        with pytest.raises(ViewUnavailableError):
            store.state(NAME)
    else:
        # The pool checks a connection before lending it: one the server ended is replaced
        # before anybody sees it fail.
        with store.transaction(write=False) as tx:
            pid = tx.fetchone("SELECT pg_backend_pid()")
        assert pid is not None
        with stores.admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid[0]])
    # The next transaction runs on a new connection: nothing was lost but the connection.
    assert store.state(NAME).position == 2
    assert faults.opened == 2


# --- Crash safety -------------------------------------------------------------------------


class SimulatedCrashError(Exception):
    """Raised by a wrapped connection where the process would have died."""


class _WrappedConnections:
    """Lends the store's connections wrapped, each connection wrapped once."""

    def __init__(self, inner: Any, wrap: Callable[[Any], Any]) -> None:
        self._inner, self._wrap = inner, wrap
        self._wrapped: dict[int, tuple[Any, Any]] = {}  # keeps each connection, so ids stay

    @contextlib.contextmanager
    def lease(self) -> Iterator[Any]:
        with self._inner.lease() as conn:
            if id(conn) not in self._wrapped:
                self._wrapped[id(conn)] = (conn, self._wrap(conn))
            yield self._wrapped[id(conn)][1]

    def discard(self, conn: Any) -> None:
        self._inner.discard(conn)

    def close(self) -> None:
        self._inner.close()


class Faults:
    """Wraps a store's connections to crash a page or lose the connection, on demand."""

    def __init__(self, crash_at: str = "") -> None:
        self.crash_at = crash_at
        self.armed = False
        self.crashed = 0
        self.lose_next = False
        self.opened = 0

    def wrap(self, conn: Any) -> Any:
        self.opened += 1
        return _FaultyConnection(conn, self)

    def hit(self, where: str) -> None:
        if self.armed and where == self.crash_at:
            self.crashed += 1
            raise SimulatedCrashError(where)


class _FaultyConnection:
    def __init__(self, conn: Any, faults: Faults) -> None:
        self._conn, self._faults = conn, faults

    def cursor(self, *args: Any, **kwargs: Any) -> _FaultyCursor:
        if self._faults.lose_next:
            self._faults.lose_next = False
            raise sqlite3.OperationalError("disk I/O error")
        return _FaultyCursor(self._conn.cursor(*args, **kwargs), self._faults)

    def commit(self) -> None:
        self._faults.hit("commit")
        self._conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _FaultyCursor:
    def __init__(self, cursor: Any, faults: Faults) -> None:
        self._cursor, self._faults = cursor, faults

    def executemany(self, statement: str, rows: Any) -> Any:
        if "INTO proj_statistics" in statement:
            self._faults.hit("rows")
        return self._cursor.executemany(statement, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def write_mixed_log(reg: Registry) -> None:
    """Reports, corrections of casualties, places and times, and events of no interest."""

    def ctx() -> WriteContext:
        return WriteContext(request_id=uuid4().hex, actor="test")

    async def go() -> None:
        ids = []
        codes = sorted(BRUSSELS.municipalities)
        for n in range(12):
            command = ReportShooting(
                occurred_at=WHEN - timedelta(days=n * 9, hours=n),
                occurred_at_precision=TimePrecision.MINUTE,
                municipality_code=codes[n % 5],
                killed=n % 2,
                injured=n % 3,
            )
            ids.append((await reg.incidents.report_shooting(command, ctx())).aggregate_id)
            if n % 4 == 0:
                await reg.gangs.register(RegisterGang(name=f"Crew {n}"), ctx())
        for n, incident in enumerate(ids[::2]):
            await reg.incidents.revise_casualties(
                ReviseCasualties(incident, killed=n + 1, injured=0, reason="died"), ctx()
            )
        for n, incident in enumerate(ids[1::3]):
            corrections: dict[str, object] = {"municipality_code": codes[-1 - n]}
            if n % 2:
                corrections["occurred_at"] = WHEN - timedelta(days=400 + n)
            await reg.incidents.amend(AmendIncident(incident, corrections, reason="fix"), ctx())

    asyncio.run(go())


def incident_ids(reg: Registry) -> list[UUID]:
    page = reg.backend.read_page(after=0, limit=10_000)
    return [reg.mapper.to_domain_event(n).originator_id for n in page.notifications]


def reports(reg: Registry) -> int:
    page = reg.backend.read_page(after=0, limit=10_000)
    events = [reg.mapper.to_domain_event(n) for n in page.notifications]
    return sum(1 for e in events if type(e).__name__ == "ShootingReported")


@pytest.mark.parametrize("point", ["rows", "commit"])
def test_a_crash_mid_commit_rolls_back_and_the_runner_resumes_to_a_clean_rebuild(stores, point):
    registry = stores.registry()
    write_mixed_log(registry)
    head = registry.backend.head()
    location = stores.storage()
    crash = Faults(crash_at=point)
    store = stores.open(location, wrap=crash.wrap)
    runner = runner_for(registry.backend, registry.mapper, store, STATISTICS, page_size=5)

    first, _ = runner.process_page(0)
    assert 0 < first < head
    ids = incident_ids(registry)
    before = snapshot(store, ids)
    assert before[1], "the first page wrote rows"

    crash.armed = True
    with pytest.raises(SimulatedCrashError):
        runner.process_page(first)
    assert crash.crashed == 1
    # Neither the position, nor the rows, nor the facts written earlier in the same
    # transaction moved; another connection sees the same.
    crash.armed = False
    assert snapshot(store, ids) == before
    observer = stores.open(location)
    assert snapshot(observer, ids) == before

    # Recovery: the runner re-reads the tracked position and goes on.
    resumed, _ = run_to_head(runner)
    assert resumed == head == store.state(NAME).position

    rebuilt = stores.new()
    run_to_head(runner_for(registry.backend, registry.mapper, rebuilt, STATISTICS))
    assert statistics_table(store) == statistics_table(rebuilt)
    assert statistics_table(observer) == statistics_table(rebuilt)
    assert facts_of(store, ids) == facts_of(rebuilt, ids)
    # Sanity: every report counts once per area and period kind.
    assert sum(r.incidents for r in query(rebuilt, "police_zone", [], "year")) == reports(registry)


def test_a_conflicting_page_is_not_applied_twice(stores):
    # Two runners on the same model: the second one to commit the same page loses.
    registry = stores.registry()
    write_mixed_log(registry)
    location = stores.storage()
    one, two = (
        runner_for(
            registry.backend, registry.mapper, stores.open(location), STATISTICS, page_size=5
        )
        for _ in range(2)
    )
    reached, _ = one.process_page(0)
    rows = statistics_table(one.store)
    with pytest.raises(ProjectionConflictError):
        two.process_page(0)
    assert statistics_table(two.store) == rows
    assert two.store.state(NAME).position == reached

    run_to_head(two)
    rebuilt = stores.new()
    run_to_head(runner_for(registry.backend, registry.mapper, rebuilt, STATISTICS))
    assert statistics_table(one.store) == statistics_table(rebuilt)


# A process that dies in the middle of a commit: the database must discard the transaction.

_CHILD = """
import contextlib, json, os, sys
from datetime import datetime
from pathlib import Path
from uuid import UUID
from projections.statistics import Bucket, IncidentFacts, Totals
from projections.statistics_model import write_deltas, write_facts
from projections.store import postgres_store, sqlite_store
from service.store.postgres import PostgresSettings

spec = json.loads(sys.argv[1])
if spec["kind"] == "sqlite":
    store = sqlite_store(Path(spec["location"]))
else:
    store = postgres_store(PostgresSettings(**spec["location"]))

class Dying:
    def __init__(self, cursor):
        self._cursor = cursor
    def executemany(self, statement, rows):
        if "INTO proj_statistics" in statement:
            sys.stdout.write("dying\\n")
            sys.stdout.flush()
            os._exit(17)
        return self._cursor.executemany(statement, rows)
    def __getattr__(self, name):
        return getattr(self._cursor, name)

class Connection:
    def __init__(self, conn):
        self._conn = conn
    def cursor(self):
        return Dying(self._conn.cursor())
    def __getattr__(self, name):
        return getattr(self._conn, name)

class Connections:
    def __init__(self, inner):
        self._inner = inner
    @contextlib.contextmanager
    def lease(self):
        with self._inner.lease() as conn:
            yield Connection(conn)
    def __getattr__(self, name):
        return getattr(self._inner, name)

store._connections = Connections(store._connections)
incident = UUID(spec["incident"])
when = datetime.fromisoformat("2024-05-31T08:00:00+00:00")
with store.transaction() as tx:
    tx.advance("statistics", previous=spec["previous"], position=spec["previous"] + 10)
    write_facts(tx, {incident: IncidentFacts("21004", "5339", when, 9, 9)})
    write_deltas(tx, [(Bucket("municipality", "21004", "day", "2024-05-31"), Totals(5, 5, 5))])
sys.stdout.write("committed\\n")
"""


def test_a_process_killed_mid_commit_leaves_the_model_as_it_was(stores):
    location = stores.storage()
    store = stores.open(location)
    install(store, STATISTICS)
    known, stranger = uuid4(), uuid4()
    commit(
        store,
        previous=0,
        position=3,
        facts={known: facts()},
        deltas=[(bucket(ANDERLECHT), Totals(1, 0, 1))],
    )
    before = snapshot(store, [known, stranger])

    spec = {
        "kind": stores.kind,
        "location": str(location) if isinstance(location, Path) else dataclasses.asdict(location),
        "previous": 3,
        "incident": str(stranger),
    }
    child = subprocess.run(  # noqa: PLW1510 - the exit code is checked below
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 17, child.stderr
    assert child.stdout.split() == ["dying"]

    assert snapshot(store, [known, stranger]) == before
    assert snapshot(stores.open(location), [known, stranger]) == before
    # The tracking row is not left locked: the same batch commits now, once.
    commit(store, previous=3, position=13, deltas=[(bucket(ANDERLECHT), Totals(1, 0, 0))])
    assert store.state(NAME).position == 13
    assert everything(store) == [row(ANDERLECHT, "2024-05-31", (2, 0, 1))]
