"""The statistics view contract, on SQLite and on PostgreSQL.

One suite, run against both views: rows and the tracked position are written in one
transaction, the position moves only from the value a batch was built on (exactly once), a
reset empties the view, and a crash in the middle of a commit leaves no trace, after which the
runner resumes to the same rows as a clean rebuild.
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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from projections.views import (
    ProjectionConflictError,
    StatisticsRow,
    StatisticsView,
    postgres_view,
    sqlite_view,
)

from projections.runner import StatisticsRunner
from projections.statistics import AREA_KINDS, PERIOD_KINDS, Bucket, IncidentFacts, Totals
from service.app.commands import AmendIncident, RegisterGang, ReportShooting, ReviseCasualties
from service.app.registry import Registry
from service.app.results import WriteContext
from service.areas import load_catalog
from service.domain.values import TimePrecision
from service.store.postgres import PostgresSettings
from service.store.sqlite import SQLiteEventStore
from tests.support.postgres import fresh_schema

REPO = Path(__file__).resolve().parents[2]
BRUSSELS = load_catalog("brussels")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
WHEN = datetime(2024, 5, 31, 8, 0, tzinfo=UTC)
ANDERLECHT, MIDI = "21001", "5341"
BRUXELLES, CAPITALE = "21004", "5339"

Location = Path | PostgresSettings


class SimulatedCrashError(Exception):
    """Raised by a wrapped cursor where the process would have died."""


class Views:
    """Opens statistics views of one kind, on fresh storage or on storage already in use."""

    def __init__(self, kind: str, tmp_path: Path, postgres: Callable[[], PostgresSettings]):
        self.kind = kind
        self._tmp_path = tmp_path
        self._postgres = postgres
        self._stack = contextlib.ExitStack()
        self._opened: list[StatisticsView] = []

    def storage(self) -> Location:
        """Somewhere new to keep statistics: an SQLite file, or an empty PostgreSQL schema."""
        if self.kind == "sqlite":
            return self._tmp_path / f"statistics-{uuid4().hex[:8]}.sqlite"
        return self._stack.enter_context(fresh_schema(self._postgres()))

    def open(self, location: Location, wrap: Callable[[Any], Any] | None = None) -> StatisticsView:
        """A view on `location`, its connection optionally wrapped (to inject failures)."""
        if wrap is None:
            view = self._factory(location)
        else:
            # The factories connect once, in the view's constructor: wrap that connection.
            module: Any = sqlite3 if self.kind == "sqlite" else psycopg
            real = module.connect
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(module, "connect", lambda *a, **k: wrap(real(*a, **k)))
                view = self._factory(location)
        self._opened.append(view)
        return view

    def new(self) -> StatisticsView:
        """A view on fresh storage."""
        return self.open(self.storage())

    def _factory(self, location: Location) -> StatisticsView:
        if isinstance(location, Path):
            return sqlite_view(location)
        return postgres_view(location)

    def close(self) -> None:
        for view in self._opened:
            with contextlib.suppress(Exception):
                view.close()
        self._stack.close()


@pytest.fixture(params=["sqlite", "postgres"])
def views(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Views]:
    opener = Views(request.param, tmp_path, lambda: request.getfixturevalue("postgres"))
    yield opener
    opener.close()


# --- Helpers ------------------------------------------------------------------------------


def bucket(code: str, period_kind: str = "day", period: str = "2024-05-31") -> Bucket:
    kind = "police_zone" if code in BRUSSELS.police_zones else "municipality"
    return Bucket(kind, code, period_kind, period)


def everything(view: StatisticsView) -> list[StatisticsRow]:
    """Every row of the view, over all area kinds and period kinds."""
    return [
        row
        for area_kind in AREA_KINDS
        for period_kind in PERIOD_KINDS
        for row in view.query(area_kind, [], period_kind, "", "")
    ]


def state(view: StatisticsView, ids: list[UUID]) -> tuple[int, list[StatisticsRow], Any]:
    """What a commit may change: position, rows and incident facts."""
    return view.position(), everything(view), view.load_facts(ids)


def facts(municipality: str = ANDERLECHT, killed: int = 0, injured: int = 1) -> IncidentFacts:
    return IncidentFacts(municipality, BRUSSELS.zone_of(municipality), WHEN, killed, injured)


def row(code: str, period: str, counts: tuple[int, int, int], period_kind: str = "day"):
    b = bucket(code, period_kind, period)
    return StatisticsRow(b.area_kind, b.area_code, b.period_kind, b.period, *counts)


# --- Commit and query ---------------------------------------------------------------------


def test_a_new_view_is_empty_at_position_zero(views):
    view = views.new()
    assert view.position() == 0
    assert everything(view) == []
    assert view.load_facts([uuid4()]) == {}
    assert view.load_facts([]) == {}


def test_commit_then_query_returns_the_rows_in_order_with_filters(views):
    view = views.new()
    view.commit(
        previous=0,
        position=7,
        facts={},
        deltas=[
            (bucket(BRUXELLES, "day", "2024-05-31"), Totals(2, 1, 3)),
            (bucket(ANDERLECHT, "day", "2024-06-01"), Totals(1, 0, 0)),
            (bucket(ANDERLECHT, "day", "2024-05-30"), Totals(1, 1, 1)),
            (bucket(MIDI, "day", "2024-05-30"), Totals(1, 1, 1)),
            (bucket(ANDERLECHT, "month", "2024-05"), Totals(1, 1, 1)),
        ],
    )

    assert view.query("municipality", [], "day", "", "") == [
        row(ANDERLECHT, "2024-05-30", (1, 1, 1)),
        row(ANDERLECHT, "2024-06-01", (1, 0, 0)),
        row(BRUXELLES, "2024-05-31", (2, 1, 3)),
    ]
    # Area codes, and an inclusive range of periods.
    assert view.query("municipality", [BRUXELLES], "day", "", "") == [
        row(BRUXELLES, "2024-05-31", (2, 1, 3)),
    ]
    assert view.query("municipality", [], "day", "2024-05-31", "2024-06-01") == [
        row(ANDERLECHT, "2024-06-01", (1, 0, 0)),
        row(BRUXELLES, "2024-05-31", (2, 1, 3)),
    ]
    assert view.query("municipality", [ANDERLECHT, "21099"], "day", "", "2024-05-31") == [
        row(ANDERLECHT, "2024-05-30", (1, 1, 1)),
    ]
    # Area kinds and period kinds are separate.
    assert view.query("police_zone", [], "day", "", "") == [row(MIDI, "2024-05-30", (1, 1, 1))]
    assert view.query("municipality", [], "month", "", "") == [
        row(ANDERLECHT, "2024-05", (1, 1, 1), "month")
    ]
    assert view.query("municipality", [], "week", "", "") == []
    assert view.position() == 7


def test_commits_add_up_and_rows_left_without_incidents_are_not_served(views):
    view = views.new()
    view.commit(
        previous=0,
        position=3,
        facts={},
        deltas=[
            (bucket(ANDERLECHT), Totals(1, 0, 1)),
            (bucket(BRUXELLES), Totals(1, 1, 0)),
        ],
    )
    view.commit(
        previous=3,
        position=5,
        facts={},
        deltas=[
            (bucket(ANDERLECHT), Totals(2, 2, 0)),
            (bucket(BRUXELLES), Totals(-1, -1, 0)),  # moved away by an amendment
        ],
    )
    assert everything(view) == [row(ANDERLECHT, "2024-05-31", (3, 2, 1))]


def test_incident_facts_round_trip_and_are_replaced(views):
    view = views.new()
    first, second = uuid4(), uuid4()
    elsewhere = WHEN.astimezone(timezone(timedelta(hours=-4)))  # the same instant
    view.commit(
        previous=0,
        position=2,
        facts={
            first: facts(ANDERLECHT, 0, 1),
            second: dataclasses.replace(facts(BRUXELLES), occurred_at=elsewhere),
        },
        deltas=[],
    )
    loaded = view.load_facts([first, second, uuid4()])
    assert loaded == {first: facts(ANDERLECHT, 0, 1), second: facts(BRUXELLES)}
    assert all(f.occurred_at.utcoffset() is not None for f in loaded.values())

    view.commit(previous=2, position=3, facts={first: facts(BRUXELLES, 1, 0)}, deltas=[])
    assert view.load_facts([first]) == {first: facts(BRUXELLES, 1, 0)}


def test_rows_and_position_survive_reopening(views):
    location = views.storage()
    view = views.open(location)
    incident = uuid4()
    view.commit(
        previous=0, position=4, facts={incident: facts()}, deltas=[(bucket(MIDI), Totals(1, 0, 1))]
    )
    view.close()

    again = views.open(location)  # the schema is created only if absent; the position kept
    assert again.position() == 4
    assert everything(again) == [row(MIDI, "2024-05-31", (1, 0, 1))]
    assert again.load_facts([incident]) == {incident: facts()}


# --- Position tracking: exactly once ------------------------------------------------------


def test_the_position_moves_only_from_previous(views):
    view = views.new()
    view.commit(previous=0, position=5, facts={}, deltas=[])
    assert view.position() == 5
    view.commit(previous=5, position=9, facts={}, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert view.position() == 9
    with pytest.raises(ProjectionConflictError):
        view.commit(previous=5, position=12, facts={}, deltas=[])
    assert view.position() == 9


def test_a_commit_with_a_stale_previous_raises_and_changes_nothing(views):
    location = views.storage()
    worker, rival = views.open(location), views.open(location)
    incident = uuid4()
    batch = {
        "previous": 0,
        "position": 6,
        "facts": {incident: facts(killed=1)},
        "deltas": [(bucket(ANDERLECHT), Totals(1, 1, 1)), (bucket(MIDI), Totals(1, 1, 1))],
    }
    worker.commit(**batch)
    before = state(worker, [incident])

    # A second worker that built the same batch from position 0 cannot apply it again...
    with pytest.raises(ProjectionConflictError):
        rival.commit(**batch)
    # ...nor can the first worker replay it (as after a lost acknowledgement)...
    with pytest.raises(ProjectionConflictError):
        worker.commit(**batch)
    # ...nor a batch with other content built on the stale position.
    with pytest.raises(ProjectionConflictError):
        rival.commit(
            previous=0,
            position=8,
            facts={incident: facts(BRUXELLES, killed=5)},
            deltas=[(bucket(BRUXELLES), Totals(4, 4, 4))],
        )

    assert state(worker, [incident]) == before
    assert state(rival, [incident]) == before
    assert everything(rival) == [
        row(ANDERLECHT, "2024-05-31", (1, 1, 1)),
        row(MIDI, "2024-05-31", (1, 1, 1)),
    ]
    # The views still work after the failed commits: the next batch goes from 6.
    rival.commit(previous=6, position=7, facts={}, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert worker.position() == 7
    assert worker.query("police_zone", [], "day", "", "") == [row(MIDI, "2024-05-31", (2, 1, 1))]


def test_reset_empties_the_view_and_it_starts_again_from_zero(views):
    view = views.new()
    incident = uuid4()
    view.commit(
        previous=0, position=9, facts={incident: facts()}, deltas=[(bucket(MIDI), Totals(1, 0, 1))]
    )
    view.reset()
    assert view.position() == 0
    assert everything(view) == []
    assert view.load_facts([incident]) == {}
    view.commit(previous=0, position=2, facts={}, deltas=[(bucket(MIDI), Totals(1, 0, 0))])
    assert everything(view) == [row(MIDI, "2024-05-31", (1, 0, 0))]


# --- Crash safety -------------------------------------------------------------------------


class Crash:
    """Wraps a connection so that, once armed, writing the statistics rows fails."""

    def __init__(self) -> None:
        self.armed = False
        self.crashed = 0

    def wrap(self, conn: Any) -> Any:
        return _Connection(conn, self)


class _Connection:
    def __init__(self, conn: Any, crash: Crash) -> None:
        self._conn, self._crash = conn, crash

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(self._conn.cursor(*args, **kwargs), self._crash)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _Cursor:
    def __init__(self, cursor: Any, crash: Crash) -> None:
        self._cursor, self._crash = cursor, crash

    def executemany(self, statement: str, rows: Any) -> Any:
        if self._crash.armed and "INTO proj_statistics" in statement:
            self._crash.crashed += 1
            raise SimulatedCrashError(statement)
        return self._cursor.executemany(statement, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry on an SQLite log with a fixed clock."""
    reg = Registry(SQLiteEventStore(str(tmp_path / "log.sqlite")), BRUSSELS, clock=lambda: NOW)
    yield reg
    reg.close()


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


def run_to_head(runner: StatisticsRunner, after: int) -> int:
    """Apply pages until the view reflects the head; return the position."""
    for _ in range(1000):
        position, head = runner.process_page(after)
        if position >= head:
            return position
        after = position
    raise AssertionError("the projection did not reach the head")


def runner_for(reg: Registry, view: StatisticsView, page_size: int = 5) -> StatisticsRunner:
    return StatisticsRunner(
        reg.backend, reg.mapper, view, BRUSSELS, reg.watcher, page_size=page_size
    )


def test_a_crash_mid_commit_rolls_back_and_the_runner_resumes_to_a_clean_rebuild(views, registry):
    write_mixed_log(registry)
    head = registry.backend.head()
    location = views.storage()
    crash = Crash()
    view = views.open(location, wrap=crash.wrap)
    runner = runner_for(registry, view)

    first, _ = runner.process_page(0)
    assert 0 < first < head
    incident_ids = [e.originator_id for e in _events(registry)]
    before = state(view, incident_ids)
    assert before[1], "the first page wrote rows"

    crash.armed = True
    with pytest.raises(SimulatedCrashError):
        runner.process_page(first)
    assert crash.crashed == 1
    # Neither the position, nor the rows, nor the facts written earlier in the same
    # transaction moved; another connection sees the same.
    assert state(view, incident_ids) == before
    observer = views.open(location)
    assert state(observer, incident_ids) == before

    # Recovery: the runner re-reads the tracked position and goes on.
    crash.armed = False
    resumed = run_to_head(runner, view.position())
    assert resumed == head == view.position()

    rebuilt = views.new()
    assert run_to_head(runner_for(registry, rebuilt, page_size=500), 0) == head
    assert everything(view) == everything(rebuilt)
    assert everything(observer) == everything(rebuilt)
    assert view.load_facts(incident_ids) == rebuilt.load_facts(incident_ids)
    # Sanity: every report counts once per area and period kind.
    reports = sum(1 for e in _events(registry) if type(e).__name__ == "ShootingReported")
    assert sum(r.incidents for r in rebuilt.query("police_zone", [], "year", "", "")) == reports


def test_a_conflicting_page_is_not_applied_twice(views, registry):
    # Two runners on the same view: the second one to commit the same page loses.
    write_mixed_log(registry)
    location = views.storage()
    one, two = (
        runner_for(registry, views.open(location)),
        runner_for(registry, views.open(location)),
    )
    reached, _ = one.process_page(0)
    rows = everything(one.view)
    with pytest.raises(ProjectionConflictError):
        two.process_page(0)
    assert everything(two.view) == rows
    assert two.view.position() == reached
    run_to_head(two, two.view.position())
    rebuilt = views.new()
    run_to_head(runner_for(registry, rebuilt), 0)
    assert everything(one.view) == everything(rebuilt)


def _events(reg: Registry) -> list[Any]:
    page = reg.backend.read_page(after=0, limit=10_000)
    return [reg.mapper.to_domain_event(n) for n in page.notifications]


# A process that dies in the middle of a commit: the database must discard the transaction.

_CHILD = """
import json, os, sys
from datetime import datetime
from pathlib import Path
from uuid import UUID
from projections import views
from projections.statistics import Bucket, IncidentFacts, Totals
from service.store.postgres import PostgresSettings

spec = json.loads(sys.argv[1])
if spec["kind"] == "sqlite":
    view = views.sqlite_view(Path(spec["location"]))
else:
    view = views.postgres_view(PostgresSettings(**spec["location"]))
conn = view._conn
real_cursor = conn.cursor

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

view._conn = type("C", (), {
    "cursor": lambda self: Dying(real_cursor()),
    "commit": lambda self: conn.commit(),
    "rollback": lambda self: conn.rollback(),
    "close": lambda self: conn.close(),
})()
view.commit(
    previous=spec["previous"],
    position=spec["previous"] + 10,
    facts={UUID(spec["incident"]): IncidentFacts(
        "21004", "5339", datetime.fromisoformat("2024-05-31T08:00:00+00:00"), 9, 9)},
    deltas=[(Bucket("municipality", "21004", "day", "2024-05-31"), Totals(5, 5, 5))],
)
sys.stdout.write("committed\\n")
"""


def test_a_process_killed_mid_commit_leaves_the_view_as_it_was(views):
    location = views.storage()
    view = views.open(location)
    known, stranger = uuid4(), uuid4()
    view.commit(
        previous=0,
        position=3,
        facts={known: facts()},
        deltas=[(bucket(ANDERLECHT), Totals(1, 0, 1))],
    )
    before = state(view, [known, stranger])

    spec = {
        "kind": views.kind,
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

    assert state(view, [known, stranger]) == before
    assert state(views.open(location), [known, stranger]) == before
    # The tracking row is not left locked: the same batch commits now, once.
    view.commit(previous=3, position=13, facts={}, deltas=[(bucket(ANDERLECHT), Totals(1, 0, 0))])
    assert view.position() == 13
    assert everything(view) == [row(ANDERLECHT, "2024-05-31", (2, 0, 1))]


def test_the_view_connection_kinds(views):
    # Guard: the suite really runs on both databases.
    view = views.new()
    raw = view._conn  # noqa: SLF001 - which driver is behind the view
    expected = sqlite3.Connection if views.kind == "sqlite" else psycopg.Connection
    assert isinstance(raw, expected)
