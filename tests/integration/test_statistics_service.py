"""StatisticsService over a real channel, on SQLite and on PostgreSQL.

Writes are read back with min_position (read-your-writes), corrections move the counts,
invalid requests are rejected with field violations, and the served rows equal those of a
view rebuilt from the log from scratch.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from incident_registry_client.proto.incidents.v1 import (
    gang_service_pb2_grpc,
    incident_pb2,
)
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.incident_service_pb2_grpc import (
    IncidentServiceStub,
)
from incident_registry_client.proto.incidents.v1.statistics_service_pb2_grpc import (
    StatisticsServiceStub,
)

from projections.statistics import AREA_KINDS, PERIOD_KINDS
from projections.statistics_model import StatisticsProjection
from projections.store import sqlite_store
from service.areas import load_catalog
from service.store.postgres import PostgresEventStore
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.harness import ServerHarness
from tests.support.projections import run_to_head, runner_for, statistics_table
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

BRUSSELS = load_catalog("brussels")
ANDERLECHT, MIDI = "21001", "5341"
BRUXELLES, CAPITALE = "21004", "5339"
FOREST = "21007"  # zone Midi
MUNICIPALITY, POLICE_ZONE = pb.AREA_KIND_MUNICIPALITY, pb.AREA_KIND_POLICE_ZONE
DAY, WEEK, MONTH, YEAR = (
    pb.PERIOD_KIND_DAY,
    pb.PERIOD_KIND_ISO_WEEK,
    pb.PERIOD_KIND_MONTH,
    pb.PERIOD_KIND_YEAR,
)
AREA_NUMBERS = {"municipality": MUNICIPALITY, "police_zone": POLICE_ZONE}
PERIOD_NUMBERS = {"day": DAY, "week": WEEK, "month": MONTH, "year": YEAR}
# Friday 31 May 2024, 08:00 UTC = 10:00 in Brussels; reported long after, so that
# amendments may move the time forward too.
MAY_31 = datetime(2024, 5, 31, 8, 0, tzinfo=UTC)
REPORTED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
WAIT = 10.0


@pytest.fixture
def statistics(channel):
    return StatisticsServiceStub(channel)


@pytest.fixture
def gangs(channel):
    return gang_service_pb2_grpc.GangServiceStub(channel)


def report(incidents, municipality=ANDERLECHT, when=MAY_31, killed=0, injured=1, **extra):
    """Report a shooting at a fixed time; return (incident id, log position)."""
    reply = incidents.ReportShooting(
        b.shooting(
            municipality_code=municipality,
            occurred_at=b.ts(when),
            reported_at=b.ts(REPORTED),
            killed=killed,
            injured=injured,
            location=None,
            **extra,
        ),
        metadata=ACTOR_METADATA,
    )
    return reply.result.aggregate_id, reply.result.position


def get(statistics, area_kind, period_kind, min_position=0, **selection):
    return statistics.GetAreaStatistics(
        pb.GetAreaStatisticsRequest(
            area_kind=area_kind, period_kind=period_kind, min_position=min_position, **selection
        ),
        timeout=WAIT,
    )


def rows(reply) -> list[tuple[str, str, int, int, int]]:
    """(area code, period, incidents, killed, injured) of every row."""
    return [(r.area_code, r.period, r.incidents, r.killed, r.injured) for r in reply.rows]


# --- Read your writes ---------------------------------------------------------------------


def test_each_write_is_read_back_with_min_position(incidents, statistics):
    _, first = report(incidents, ANDERLECHT, MAY_31, killed=0, injured=1)
    reply = get(statistics, MUNICIPALITY, DAY, first)
    assert reply.position >= first
    assert rows(reply) == [(ANDERLECHT, "2024-05-31", 1, 0, 1)]
    assert all((r.area_kind, r.period_kind) == (MUNICIPALITY, DAY) for r in reply.rows)

    # Sunday 2 June: same ISO week 22, next month.
    _, second = report(
        incidents, ANDERLECHT, datetime(2024, 6, 2, 9, tzinfo=UTC), killed=1, injured=0
    )
    assert rows(get(statistics, MUNICIPALITY, DAY, second)) == [
        (ANDERLECHT, "2024-05-31", 1, 0, 1),
        (ANDERLECHT, "2024-06-02", 1, 1, 0),
    ]

    _, third = report(incidents, BRUXELLES, MAY_31, killed=0, injured=2)
    assert rows(get(statistics, MUNICIPALITY, WEEK, third)) == [
        (ANDERLECHT, "2024-W22", 2, 1, 1),
        (BRUXELLES, "2024-W22", 1, 0, 2),
    ]
    assert rows(get(statistics, POLICE_ZONE, MONTH, third)) == [
        (CAPITALE, "2024-05", 1, 0, 2),
        (MIDI, "2024-05", 1, 0, 1),
        (MIDI, "2024-06", 1, 1, 0),
    ]
    assert rows(get(statistics, POLICE_ZONE, YEAR, third)) == [
        (CAPITALE, "2024", 1, 0, 2),
        (MIDI, "2024", 2, 1, 1),
    ]
    reply = get(statistics, POLICE_ZONE, YEAR, third)
    assert {(r.area_kind, r.period_kind) for r in reply.rows} == {(POLICE_ZONE, YEAR)}


def test_area_codes_and_period_range_select_rows(incidents, statistics):
    for day in (29, 30, 31):
        report(incidents, ANDERLECHT, MAY_31.replace(day=day))
    _, last = report(incidents, BRUXELLES, MAY_31.replace(day=30))

    assert rows(get(statistics, MUNICIPALITY, DAY, last, area_codes=[BRUXELLES])) == [
        (BRUXELLES, "2024-05-30", 1, 0, 1)
    ]
    assert rows(
        get(statistics, MUNICIPALITY, DAY, last, from_period="2024-05-30", to_period="2024-05-30")
    ) == [(ANDERLECHT, "2024-05-30", 1, 0, 1), (BRUXELLES, "2024-05-30", 1, 0, 1)]
    assert rows(get(statistics, MUNICIPALITY, DAY, last, from_period="2024-05-31")) == [
        (ANDERLECHT, "2024-05-31", 1, 0, 1)
    ]
    assert rows(
        get(statistics, MUNICIPALITY, DAY, last, area_codes=[ANDERLECHT], to_period="2024-05-29")
    ) == [(ANDERLECHT, "2024-05-29", 1, 0, 1)]
    assert rows(get(statistics, MUNICIPALITY, DAY, last, area_codes=["21099"])) == []


def test_the_local_day_not_the_utc_day_is_served(incidents, statistics):
    # 23:30 UTC on Sunday 31 Dec 2023 is 00:30 on Monday 1 Jan 2024 in Brussels.
    _, position = report(incidents, ANDERLECHT, datetime(2023, 12, 31, 23, 30, tzinfo=UTC))
    assert rows(get(statistics, MUNICIPALITY, DAY, position)) == [
        (ANDERLECHT, "2024-01-01", 1, 0, 1)
    ]
    assert rows(get(statistics, MUNICIPALITY, WEEK, position)) == [
        (ANDERLECHT, "2024-W01", 1, 0, 1)
    ]
    assert rows(get(statistics, POLICE_ZONE, YEAR, position)) == [(MIDI, "2024", 1, 0, 1)]


# --- Corrections --------------------------------------------------------------------------


def test_a_casualty_revision_and_amendments_are_reflected(incidents, statistics):
    incident_id, _ = report(incidents, ANDERLECHT, MAY_31, killed=0, injured=2)
    report(incidents, FOREST, MAY_31, killed=0, injured=1)

    revised = incidents.ReviseCasualties(
        b.casualties(incident_id, killed=1, injured=1), metadata=ACTOR_METADATA
    ).result
    assert rows(get(statistics, MUNICIPALITY, DAY, revised.position)) == [
        (ANDERLECHT, "2024-05-31", 1, 1, 1),
        (FOREST, "2024-05-31", 1, 0, 1),
    ]
    assert rows(get(statistics, POLICE_ZONE, DAY, revised.position)) == [
        (MIDI, "2024-05-31", 2, 1, 2)
    ]

    # Moved to Bruxelles-Ville: out of Anderlecht and zone Midi, into Bruxelles and its zone.
    moved = incidents.AmendIncident(
        b.amendment(
            incident_id,
            "municipality_code",
            correction=incident_pb2.IncidentCorrection(municipality_code=BRUXELLES),
        ),
        metadata=ACTOR_METADATA,
    ).result
    assert rows(get(statistics, MUNICIPALITY, DAY, moved.position)) == [
        (BRUXELLES, "2024-05-31", 1, 1, 1),
        (FOREST, "2024-05-31", 1, 0, 1),
    ]
    assert rows(get(statistics, POLICE_ZONE, YEAR, moved.position)) == [
        (CAPITALE, "2024", 1, 1, 1),
        (MIDI, "2024", 1, 0, 1),
    ]

    # Moved in time, to Monday 3 June: another day, week and month; the same year.
    retimed = incidents.AmendIncident(
        b.amendment(
            incident_id,
            "occurred_at",
            correction=incident_pb2.IncidentCorrection(
                occurred_at=b.ts(datetime(2024, 6, 3, 15, tzinfo=UTC))
            ),
        ),
        metadata=ACTOR_METADATA,
    ).result
    assert rows(get(statistics, MUNICIPALITY, MONTH, retimed.position)) == [
        (BRUXELLES, "2024-06", 1, 1, 1),
        (FOREST, "2024-05", 1, 0, 1),
    ]
    assert rows(get(statistics, POLICE_ZONE, WEEK, retimed.position)) == [
        (CAPITALE, "2024-W23", 1, 1, 1),
        (MIDI, "2024-W22", 1, 0, 1),
    ]
    assert rows(get(statistics, POLICE_ZONE, YEAR, retimed.position)) == [
        (CAPITALE, "2024", 1, 1, 1),
        (MIDI, "2024", 1, 0, 1),
    ]

    # An amendment of something else, and a write of no interest, leave the rows alone.
    other = incidents.AmendIncident(b.amendment(incident_id), metadata=ACTOR_METADATA).result
    reply = get(statistics, MUNICIPALITY, DAY, other.position)
    assert reply.position >= other.position
    assert rows(reply) == [
        (BRUXELLES, "2024-06-03", 1, 1, 1),
        (FOREST, "2024-05-31", 1, 0, 1),
    ]


# --- Rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area_kind", "period_kind", "fields"),
    [
        (pb.AREA_KIND_UNSPECIFIED, DAY, {"area_kind"}),
        (MUNICIPALITY, pb.PERIOD_KIND_UNSPECIFIED, {"period_kind"}),
        (pb.AREA_KIND_UNSPECIFIED, pb.PERIOD_KIND_UNSPECIFIED, {"area_kind", "period_kind"}),
        (99, DAY, {"area_kind"}),  # a number no version of the enum defines
        (POLICE_ZONE, 42, {"period_kind"}),
    ],
)
def test_invalid_area_or_period_kinds_are_invalid_arguments(
    statistics, area_kind, period_kind, fields
):
    with pytest.raises(grpc.RpcError) as failure:
        get(statistics, area_kind, period_kind)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == fields


def test_a_negative_min_position_is_an_invalid_argument(statistics):
    with pytest.raises(grpc.RpcError) as failure:
        get(statistics, MUNICIPALITY, DAY, -1)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == {"min_position"}


def test_min_position_beyond_the_head_is_out_of_range(server, incidents, statistics):
    _, head = report(incidents)
    assert rows(get(statistics, MUNICIPALITY, DAY, head))  # the head itself is fine
    for beyond in (head + 1, head + 1000):
        with pytest.raises(grpc.RpcError) as failure:
            get(statistics, MUNICIPALITY, DAY, beyond)
        assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert set(field_violations(failure.value)) == {"min_position"}
    assert server.registry.backend.head() == head


def test_an_empty_log_serves_no_rows(statistics):
    reply = get(statistics, POLICE_ZONE, YEAR)
    assert list(reply.rows) == []
    assert reply.position == 0
    with pytest.raises(grpc.RpcError) as failure:
        get(statistics, POLICE_ZONE, YEAR, 1)
    assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE


@contextlib.contextmanager
def projection_blocked(server: ServerHarness) -> Iterator[None]:
    """Hold a write lock on the statistics tables, so the projection cannot commit."""
    assert server.registry is not None
    backend = server.registry.backend
    if isinstance(backend, PostgresEventStore):
        settings = backend.settings
        with psycopg.connect(
            host=settings.host,
            port=settings.port,
            dbname=settings.dbname,
            user=settings.user,
            password=settings.password,
            options=f"-c search_path={settings.schema}",
        ) as conn:
            conn.execute("LOCK TABLE projection_state IN EXCLUSIVE MODE")
            yield
            conn.rollback()
        return
    path = server.db_path.with_name(server.db_path.stem + "-projections.sqlite")
    lite = sqlite3.connect(str(path), isolation_level=None)
    try:
        lite.execute("BEGIN IMMEDIATE")
        yield
        lite.execute("ROLLBACK")
    finally:
        lite.close()


def test_a_projection_that_has_not_caught_up_in_time_is_unavailable(server, incidents, statistics):
    _, before = report(incidents)
    assert rows(get(statistics, MUNICIPALITY, DAY, before))
    with projection_blocked(server):
        _, position = report(incidents, BRUXELLES)
        with pytest.raises(grpc.RpcError) as failure:
            statistics.GetAreaStatistics(
                pb.GetAreaStatisticsRequest(
                    area_kind=MUNICIPALITY, period_kind=DAY, min_position=position
                ),
                timeout=1.0,
            )
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry" in (failure.value.details() or "")
    # Once the lock is gone, the projection commits and the same read succeeds.
    assert rows(get(statistics, MUNICIPALITY, DAY, position)) == [
        (ANDERLECHT, "2024-05-31", 1, 0, 1),
        (BRUXELLES, "2024-05-31", 1, 0, 1),
    ]


# --- Rebuild equivalence ------------------------------------------------------------------


def served(statistics, min_position):
    """Every served row, by area kind and period kind."""
    return {
        (area_kind, period_kind): rows(
            get(
                statistics,
                AREA_NUMBERS[area_kind],
                PERIOD_NUMBERS[period_kind],
                min_position,
            )
        )
        for area_kind in AREA_KINDS
        for period_kind in PERIOD_KINDS
    }


def test_served_rows_equal_a_view_rebuilt_from_the_log(
    server, incidents, gangs, statistics, tmp_path
):
    codes = sorted(BRUSSELS.municipalities)
    ids = []
    for n in range(15):
        when = datetime(2023, 12, 25, 23, 30, tzinfo=UTC) + timedelta(days=n * 3, hours=n * 5)
        incident_id, _ = report(incidents, codes[n % 7], when, killed=n % 2, injured=(n * 7) % 4)
        ids.append(incident_id)
    gang_id = gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.aggregate_id
    for n, incident_id in enumerate(ids[::3]):
        incidents.ReviseCasualties(
            b.casualties(incident_id, killed=n, injured=n + 1), metadata=ACTOR_METADATA
        )
    for n, incident_id in enumerate(ids[1::4]):
        paths = ["municipality_code"] if n % 2 else ["municipality_code", "occurred_at"]
        incidents.AmendIncident(
            b.amendment(
                incident_id,
                *paths,
                correction=incident_pb2.IncidentCorrection(
                    municipality_code=codes[-1 - n],
                    occurred_at=b.ts(datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),
                ),
            ),
            metadata=ACTOR_METADATA,
        )
    incidents.AttributeToGang(b.attribution(ids[0], gang_id), metadata=ACTOR_METADATA)
    incidents.LinkIncidents(b.link(ids[1], ids[2]), metadata=ACTOR_METADATA)
    # The last write is of no interest to the statistics: min_position still works.
    last = gangs.AddGangAlias(b.alias(gang_id), metadata=ACTOR_METADATA).result.position
    assert last == server.registry.backend.head()

    before = served(statistics, last)
    assert sum(count for (_, _, count, _, _) in before[("police_zone", "year")]) == len(ids)

    registry = server.registry
    view = sqlite_store(tmp_path / "rebuilt.sqlite")
    try:
        runner = runner_for(
            registry.backend, registry.mapper, view, StatisticsProjection(BRUSSELS), page_size=4
        )
        position, pages = run_to_head(runner)
        assert position == last
        assert pages > 3
        rebuilt = statistics_table(view)
    finally:
        view.close()
    assert rebuilt == before
    assert served(statistics, last) == before


def test_concurrent_writers_and_readers_agree_with_the_log(server, incidents, statistics):
    # Writers on several threads; each one reads its own write back at once.
    failures: list[BaseException] = []

    def writer(code):
        try:
            for n in range(5):
                _, position = report(incidents, code, MAY_31 + timedelta(hours=n))
                reply = get(statistics, MUNICIPALITY, DAY, position, area_codes=[code])
                assert reply.position >= position
                ((_, _, count, _, _),) = rows(reply)
                assert count == n + 1
        except BaseException as err:
            failures.append(err)

    threads = [
        threading.Thread(target=writer, args=(code,)) for code in (ANDERLECHT, FOREST, BRUXELLES)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    head = server.registry.backend.head()
    assert rows(get(statistics, POLICE_ZONE, DAY, head)) == [
        (CAPITALE, "2024-05-31", 5, 0, 5),
        (MIDI, "2024-05-31", 10, 0, 10),
    ]


def test_a_restart_resumes_from_the_tracked_position_without_counting_twice(server, incidents):
    incident_id, _ = report(incidents, ANDERLECHT, MAY_31, killed=0, injured=1)
    revised = incidents.ReviseCasualties(
        b.casualties(incident_id, killed=1, injured=0), metadata=ACTOR_METADATA
    ).result
    with server.channel() as chan:
        before = rows(get(StatisticsServiceStub(chan), MUNICIPALITY, DAY, revised.position))
    assert before == [(ANDERLECHT, "2024-05-31", 1, 1, 0)]

    server.restart()
    with server.channel() as chan:
        stub = StatisticsServiceStub(chan)
        # The same rows once the projection has re-read its position: nothing applied twice.
        assert rows(get(stub, MUNICIPALITY, DAY, revised.position)) == before
        # And it goes on from there.
        more = IncidentServiceStub(chan)
        _, position = report(more, FOREST, MAY_31, killed=0, injured=3)
        reply = get(stub, POLICE_ZONE, DAY, position)
        assert reply.position >= position
        assert rows(reply) == [(MIDI, "2024-05-31", 2, 1, 3)]
