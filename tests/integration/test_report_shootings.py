"""IncidentService.ReportShootings: many shootings in one call, all of them or none.

Each shooting goes through the ordinary command path — the same checks as ReportShooting, the
group-commit writer, idempotency under its own request_id — so a batch sent again replays.
One invalid shooting fails the batch, naming `requests[i].<field>`, before anything is written.
Historical shootings keep their time: a file of 2004 incidents counts in 2004.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    incident_pb2,
    statistics_service_pb2,
    statistics_service_pb2_grpc,
)
from incident_registry_client.proto.incidents.v1 import incident_service_pb2 as pb

from service.app.shooting_batches import MAX_BATCH_REPORTS
from tests.support import builders as b
from tests.support.builders import ACTOR, ACTOR_METADATA
from tests.support.stores import BOTH_STORES

WAIT = 15.0
SCHAERBEEK, UCCLE = "21015", "21016"
# Shootings of January 2004, known to the day, reported when the file is imported.
NEW_YEAR_2004 = datetime(2004, 1, 1, 2, 30, tzinfo=UTC)


def historical(
    day: int, municipality: str = SCHAERBEEK, **fields: object
) -> pb.ReportShootingRequest:
    defaults: dict[str, object] = {
        "occurred_at": b.ts(NEW_YEAR_2004 + timedelta(days=day)),
        "occurred_at_precision": incident_pb2.TIME_PRECISION_DAY,
        "reported_at": None,
        "municipality_code": municipality,
        "location": None,
        "sources": [],
    }
    return b.shooting(**{**defaults, **fields})


def report(incidents, requests: list[pb.ReportShootingRequest]) -> pb.ReportShootingsResponse:
    reply: pb.ReportShootingsResponse = incidents.ReportShootings(
        pb.ReportShootingsRequest(requests=requests), metadata=ACTOR_METADATA, timeout=WAIT
    )
    return reply


def head(channel) -> int:
    log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    position: int = log.GetHead(event_log_service_pb2.GetHeadRequest(), timeout=WAIT).position
    return position


def failure(incidents, requests: list[pb.ReportShootingRequest]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        report(incidents, requests)
    return caught.value


@BOTH_STORES
def test_every_shooting_is_recorded_with_one_result_each_in_order(incidents, channel):
    requests = [historical(day) for day in range(5)]
    reply = report(incidents, requests)
    assert len(reply.results) == 5
    assert [r.version for r in reply.results] == [1] * 5
    assert not any(r.replayed for r in reply.results)
    positions = [r.position for r in reply.results]
    assert positions == sorted(positions)
    assert positions[-1] == head(channel)
    # Each is an ordinary incident, with the caller's metadata and its own request id.
    for request, result in zip(requests, reply.results, strict=True):
        found = incidents.GetIncident(b.get_incident(result.aggregate_id), timeout=WAIT)
        assert found.incident.occurred_at == request.occurred_at
        (event,) = found.history
        assert (event.metadata.actor, event.metadata.request_id) == (ACTOR, request.request_id)
        assert event.position == result.position


def test_historical_shootings_keep_their_time_and_count_in_their_year(incidents, channel):
    before = datetime.now(UTC)
    reply = report(
        incidents,
        [
            historical(0),
            historical(9, killed=1),
            historical(40, UCCLE, reported_at=b.ts(NEW_YEAR_2004 + timedelta(days=41))),
        ],
    )
    first = incidents.GetIncident(b.get_incident(reply.results[0].aggregate_id), timeout=WAIT)
    assert first.incident.occurred_at.ToDatetime(tzinfo=UTC) == NEW_YEAR_2004
    # Without a reported_at, the shooting is reported now; with one, when it says.
    assert first.incident.reported_at.ToDatetime(tzinfo=UTC) >= before
    third = incidents.GetIncident(b.get_incident(reply.results[2].aggregate_id), timeout=WAIT)
    assert third.incident.reported_at.ToDatetime(tzinfo=UTC) == NEW_YEAR_2004 + timedelta(days=41)
    statistics = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
    rows = statistics.GetAreaStatistics(
        statistics_service_pb2.GetAreaStatisticsRequest(
            area_kind=statistics_service_pb2.AREA_KIND_MUNICIPALITY,
            period_kind=statistics_service_pb2.PERIOD_KIND_MONTH,
            min_position=reply.results[-1].position,
        ),
        timeout=WAIT,
    ).rows
    assert [(r.area_code, r.period, r.incidents, r.killed) for r in rows] == [
        (SCHAERBEEK, "2004-01", 2, 1),
        (UCCLE, "2004-02", 1, 0),
    ]


@BOTH_STORES
def test_the_same_batch_sent_again_replays_and_writes_nothing(incidents, channel):
    requests = [historical(day) for day in range(4)]
    first = report(incidents, requests)
    written = head(channel)
    again = report(incidents, requests)
    assert all(r.replayed for r in again.results)
    assert [(r.aggregate_id, r.position) for r in again.results] == [
        (r.aggregate_id, r.position) for r in first.results
    ]
    assert head(channel) == written
    # A batch that repeats part of an earlier one (a resumed file import) writes the rest.
    more = report(incidents, [*requests[2:], historical(10)])
    assert [r.replayed for r in more.results] == [True, True, False]
    assert more.results[-1].position == head(channel) == written + 1


def test_one_invalid_shooting_fails_the_batch_naming_every_problem(incidents, channel):
    future = datetime.now(UTC) + timedelta(days=2)
    requests = [
        historical(0),
        historical(1, weapons=[incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN)]),
        historical(2, municipality_code="99999"),
        historical(3, occurred_at=None),
        historical(4, occurred_at=b.ts(future)),
        historical(5, reported_at=b.ts(NEW_YEAR_2004 - timedelta(days=1))),
        historical(6, occurred_at_precision=incident_pb2.TIME_PRECISION_UNSPECIFIED),
        historical(7, request_id=""),
        historical(8),
    ]
    err = failure(incidents, requests)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(b.field_violations(err)) == {
        "requests[1].weapons[0].count",
        "requests[2].municipality_code",
        "requests[3].occurred_at",
        "requests[4].occurred_at",
        "requests[5].occurred_at",
        "requests[6].occurred_at_precision",
        "requests[7].request_id",
    }
    assert head(channel) == 0  # not even the valid ones


def test_a_request_id_is_used_once_per_batch_and_for_one_shooting(incidents, channel):
    twice = historical(0)
    err = failure(incidents, [twice, historical(1), twice])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(b.field_violations(err)) == ["requests[2].request_id"]
    # An id accepted before for another shooting fails the batch before anything is written.
    accepted = report(incidents, [historical(2)])
    reused = historical(3, request_id=_request_id_of(incidents, accepted.results[0].aggregate_id))
    written = head(channel)
    err = failure(incidents, [historical(4), reused])
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert head(channel) == written


def _request_id_of(incidents, incident_id: str) -> str:
    found = incidents.GetIncident(b.get_incident(incident_id), timeout=WAIT)
    request_id: str = found.history[0].metadata.request_id
    return request_id


def test_a_batch_holds_one_to_a_thousand_shootings(incidents, channel):
    for requests in ([], [historical(0) for _ in range(MAX_BATCH_REPORTS + 1)]):
        err = failure(incidents, requests)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "requests" in b.field_violations(err)
    # Violations are listed up to a bound, with how many more there are.
    err = failure(incidents, [historical(0, municipality_code="99999") for _ in range(50)])
    violations = b.field_violations(err)
    assert len(violations) == 21
    assert violations["requests"] == "30 more violations are not listed"
    assert head(channel) == 0
