"""WatchStatistics: a dashboard snapshot, then each change, over a real channel."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import incident_pb2
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.statistics_service_pb2_grpc import (
    StatisticsServiceStub,
)

from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.stores import BOTH_STORES

MAY_31 = datetime(2024, 5, 31, 8, 0, tzinfo=UTC)
REPORTED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
ANDERLECHT, BRUXELLES, FOREST = "21001", "21004", "21007"
DEADLINE = 20.0


@pytest.fixture
def statistics(channel):
    return StatisticsServiceStub(channel)


def report(incidents, municipality: str = ANDERLECHT) -> tuple[str, int]:
    reply = incidents.ReportShooting(
        b.shooting(
            municipality_code=municipality,
            occurred_at=b.ts(MAY_31),
            reported_at=b.ts(REPORTED),
            killed=0,
            injured=1,
            location=None,
        ),
        metadata=ACTOR_METADATA,
    )
    return reply.result.aggregate_id, reply.result.position


def watch(statistics, min_position: int = 0, **selection):
    return statistics.WatchStatistics(
        pb.WatchStatisticsRequest(
            area_kind=selection.pop("area_kind", pb.AREA_KIND_MUNICIPALITY),
            period_kind=pb.PERIOD_KIND_YEAR,
            min_position=min_position,
            **selection,
        ),
        timeout=DEADLINE,
    )


def rows(message) -> list[tuple[str, int, int, int]]:
    return [(r.area_code, r.incidents, r.killed, r.injured) for r in message.rows]


def totals(message) -> tuple[int, int, int]:
    return (message.totals.incidents, message.totals.killed, message.totals.injured)


@BOTH_STORES
def test_a_snapshot_then_each_change_including_corrections(incidents, statistics):
    first_id, first = report(incidents)
    stream = watch(statistics, first)
    try:
        snapshot = next(stream)
        assert snapshot.snapshot
        assert snapshot.position >= first
        assert rows(snapshot) == [(ANDERLECHT, 1, 0, 1)]
        assert totals(snapshot) == (1, 0, 1)

        _, second = report(incidents, BRUXELLES)
        change = next(stream)
        assert not change.snapshot
        assert change.position >= second
        assert rows(change) == [(BRUXELLES, 1, 0, 1)]
        assert totals(change) == (2, 0, 2)

        incidents.ReviseCasualties(
            b.casualties(first_id, killed=1, injured=0), metadata=ACTOR_METADATA
        )
        assert rows(next(stream)) == [(ANDERLECHT, 1, 1, 0)]

        # Moving Anderlecht's only incident away empties its row: sent with zeros.
        incidents.AmendIncident(
            b.amendment(
                first_id,
                "municipality_code",
                correction=incident_pb2.IncidentCorrection(municipality_code=BRUXELLES),
            ),
            metadata=ACTOR_METADATA,
        )
        moved = next(stream)
        assert rows(moved) == [(ANDERLECHT, 0, 0, 0), (BRUXELLES, 2, 1, 1)]
        assert totals(moved) == (2, 1, 1)
    finally:
        stream.cancel()


def test_changes_outside_the_selection_send_nothing(incidents, statistics):
    stream = watch(statistics, area_codes=[BRUXELLES])
    try:
        snapshot = next(stream)
        assert snapshot.snapshot
        assert rows(snapshot) == []
        report(incidents, ANDERLECHT)
        report(incidents, FOREST)
        _, inside = report(incidents, BRUXELLES)
        change = next(stream)
        # The first message after the snapshot is the change inside the selection.
        assert rows(change) == [(BRUXELLES, 1, 0, 1)]
        assert change.position >= inside
        assert totals(change) == (1, 0, 1)
    finally:
        stream.cancel()


def test_the_watch_checks_its_arguments(statistics):
    with pytest.raises(grpc.RpcError) as failure:
        next(
            statistics.WatchStatistics(pb.WatchStatisticsRequest(min_position=-1), timeout=DEADLINE)
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == {"area_kind", "period_kind", "min_position"}


def test_a_watch_ends_with_unavailable_when_the_server_stops(server, incidents, statistics):
    _, position = report(incidents)
    stream = watch(statistics, position)
    assert next(stream).snapshot
    started = time.monotonic()
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    with pytest.raises(grpc.RpcError) as failure:
        next(stream)
    stopper.join()
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in failure.value.details()
    assert time.monotonic() - started < 5  # not held until the drain grace runs out


def test_a_watch_ends_with_failed_precondition_when_the_projection_stops(
    server, incidents, statistics, monkeypatch
):
    _, position = report(incidents)
    stream = watch(statistics, position)
    assert next(stream).snapshot

    def broken(tx: object, events: object) -> None:
        raise RuntimeError("cannot apply event")

    monkeypatch.setattr(server.projections.runner("statistics").projection, "apply", broken)
    report(incidents, BRUXELLES)
    with pytest.raises(grpc.RpcError) as failure:
        next(stream)
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot apply event" in failure.value.details()
