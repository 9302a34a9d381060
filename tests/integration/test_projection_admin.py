"""ProjectionAdminService: operators list, pause, resume, rebuild and reset read models."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import projection_admin_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as spb
from incident_registry_client.proto.incidents.v1.projection_admin_service_pb2_grpc import (
    ProjectionAdminServiceStub,
)
from incident_registry_client.proto.incidents.v1.statistics_service_pb2_grpc import (
    StatisticsServiceStub,
)

from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, detail, field_violations
from tests.support.stores import BOTH_STORES

MAY_31 = datetime(2024, 5, 31, 8, 0, tzinfo=UTC)
ANDERLECHT, BRUXELLES = "21001", "21004"
WAIT = 10.0


@pytest.fixture
def admin(channel):
    return ProjectionAdminServiceStub(channel)


@pytest.fixture
def statistics(channel):
    return StatisticsServiceStub(channel)


def report(incidents, municipality: str = ANDERLECHT) -> int:
    reply = incidents.ReportShooting(
        b.shooting(municipality_code=municipality, occurred_at=b.ts(MAY_31), location=None),
        metadata=ACTOR_METADATA,
    )
    position: int = reply.result.position
    return position


def info(admin, name: str = "statistics") -> pb.ProjectionInfo:
    listed = admin.ListProjections(pb.ListProjectionsRequest(), timeout=WAIT).projections
    (found,) = [p for p in listed if p.name == name]
    result: pb.ProjectionInfo = found
    return result


def eventually(check: Callable[[], bool], seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def counts(statistics, min_position: int = 0) -> list[tuple[str, int]]:
    reply = statistics.GetAreaStatistics(
        spb.GetAreaStatisticsRequest(
            area_kind=spb.AREA_KIND_MUNICIPALITY,
            period_kind=spb.PERIOD_KIND_YEAR,
            min_position=min_position,
        ),
        timeout=WAIT,
    )
    return [(row.area_code, row.incidents) for row in reply.rows]


@BOTH_STORES
def test_every_projection_is_listed_caught_up_with_the_head(admin, incidents, statistics):
    position = report(incidents)
    counts(statistics, position)
    listed = admin.ListProjections(pb.ListProjectionsRequest(), timeout=WAIT).projections
    names = [p.name for p in listed]
    assert names == sorted(names)
    assert "statistics" in names
    stats = info(admin)
    assert stats.state == pb.PROJECTION_STATE_RUNNING
    assert stats.description
    assert stats.applied_here
    assert (stats.position, stats.head, stats.lag_events) == (position, position, 0)
    assert stats.lag.ToTimedelta().total_seconds() == 0
    assert stats.start_position == 0
    assert stats.error == ""


@BOTH_STORES
def test_a_paused_projection_falls_behind_and_resume_catches_up(admin, incidents, statistics):
    first = report(incidents)
    counts(statistics, first)
    paused = admin.PauseProjection(pb.PauseProjectionRequest(name="statistics"), timeout=WAIT)
    assert paused.projection.state == pb.PROJECTION_STATE_PAUSED
    second = report(incidents, BRUXELLES)
    time.sleep(0.3)  # long enough for a running projection to apply it
    behind = info(admin)
    assert behind.state == pb.PROJECTION_STATE_PAUSED
    assert behind.position == first
    assert behind.lag_events == second - first
    assert behind.lag.ToTimedelta().total_seconds() > 0
    # A read that needs the paused projection to move is told why, at once.
    with pytest.raises(grpc.RpcError) as failure:
        counts(statistics, second)
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "paused" in failure.value.details()
    assert counts(statistics) == [(ANDERLECHT, 1)]

    resumed = admin.ResumeProjection(pb.ResumeProjectionRequest(name="statistics"), timeout=WAIT)
    assert resumed.projection.state == pb.PROJECTION_STATE_RUNNING
    assert counts(statistics, second) == [(ANDERLECHT, 1), (BRUXELLES, 1)]
    eventually(lambda: info(admin).lag_events == 0)


@BOTH_STORES
def test_rebuild_starts_from_scratch_and_reaches_the_same_rows(admin, incidents, statistics):
    for municipality in (ANDERLECHT, BRUXELLES, ANDERLECHT):
        last = report(incidents, municipality)
    before = counts(statistics, last)
    rebuilt = admin.RebuildProjection(pb.RebuildProjectionRequest(name="statistics"), timeout=WAIT)
    assert rebuilt.projection.start_position == 0
    assert rebuilt.projection.position <= last
    eventually(lambda: info(admin).position == last)
    assert counts(statistics, last) == before == [(ANDERLECHT, 2), (BRUXELLES, 1)]


@BOTH_STORES
def test_reset_applies_only_the_events_after_the_position(admin, incidents, statistics):
    first = report(incidents)
    second = report(incidents, BRUXELLES)
    counts(statistics, second)
    reset = admin.ResetProjection(
        pb.ResetProjectionRequest(name="statistics", position=first), timeout=WAIT
    )
    assert reset.projection.start_position == first
    third = report(incidents, BRUXELLES)
    assert counts(statistics, third) == [(BRUXELLES, 2)]
    assert info(admin).start_position == first


@BOTH_STORES
def test_a_faulted_projection_is_shown_and_resumes_once_fixed(
    server, admin, incidents, statistics, monkeypatch
):
    runner = server.projections.runner("statistics")
    first = report(incidents)
    counts(statistics, first)

    def broken(tx: object, events: object) -> None:
        raise ValueError("cannot apply this event")

    monkeypatch.setattr(runner.projection, "apply", broken)
    second = report(incidents, BRUXELLES)
    eventually(lambda: info(admin).state == pb.PROJECTION_STATE_FAULTED)
    faulted = info(admin)
    assert f"at position {first}" in faulted.error
    assert "ValueError: cannot apply this event" in faulted.error
    assert faulted.position == first
    # It stays faulted (no retry loop) until an operator resumes it.
    time.sleep(0.3)
    assert info(admin).state == pb.PROJECTION_STATE_FAULTED

    monkeypatch.undo()
    resumed = admin.ResumeProjection(pb.ResumeProjectionRequest(name="statistics"), timeout=WAIT)
    assert resumed.projection.error == ""
    assert counts(statistics, second) == [(ANDERLECHT, 1), (BRUXELLES, 1)]
    assert info(admin).state == pb.PROJECTION_STATE_RUNNING


def test_operations_check_their_arguments(admin, incidents):
    position = report(incidents)
    for call, request in (
        (admin.PauseProjection, pb.PauseProjectionRequest()),
        (admin.ResumeProjection, pb.ResumeProjectionRequest(name=" ")),
        (admin.RebuildProjection, pb.RebuildProjectionRequest()),
    ):
        with pytest.raises(grpc.RpcError) as failure:
            call(request, timeout=WAIT)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(failure.value)) == {"name"}

    with pytest.raises(grpc.RpcError) as failure:
        admin.ResetProjection(pb.ResetProjectionRequest(name="", position=-1), timeout=WAIT)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == {"name", "position"}

    with pytest.raises(grpc.RpcError) as failure:
        admin.ResetProjection(
            pb.ResetProjectionRequest(name="statistics", position=position + 1), timeout=WAIT
        )
    assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert set(field_violations(failure.value)) == {"position"}

    for call, request in (
        (admin.PauseProjection, pb.PauseProjectionRequest(name="nope")),
        (admin.ResetProjection, pb.ResetProjectionRequest(name="nope")),
    ):
        with pytest.raises(grpc.RpcError) as failure:
            call(request, timeout=WAIT)
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
        resource = detail(failure.value, error_details_pb2.ResourceInfo)
        assert (resource.resource_type, resource.resource_name) == ("projection", "nope")
    # Nothing was changed by the refused calls.
    assert info(admin).state == pb.PROJECTION_STATE_RUNNING


@BOTH_STORES
def test_a_read_reports_a_position_past_events_the_model_does_not_read(
    incidents, gangs, statistics
):
    report(incidents)
    # A gang registration means nothing to the statistics: the model reflects it at once,
    # although its tracked position is written a moment later.
    position = gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.position
    reply = statistics.GetAreaStatistics(
        spb.GetAreaStatisticsRequest(
            area_kind=spb.AREA_KIND_MUNICIPALITY,
            period_kind=spb.PERIOD_KIND_YEAR,
            min_position=position,
        ),
        timeout=WAIT,
    )
    assert reply.position >= position
    assert [(row.area_code, row.incidents) for row in reply.rows] == [(ANDERLECHT, 1)]
