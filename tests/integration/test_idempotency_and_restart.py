"""Retries are answered from the log, state survives restarts, and the server is introspectable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from incident_registry_client.proto.incidents.v1 import (
    asset_service_pb2_grpc,
    command_service_pb2_grpc,
    gang_service_pb2_grpc,
    incident_service_pb2_grpc,
)

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, detail
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

REGISTRY_SERVICES = {
    "incidents.v1.IncidentService",
    "incidents.v1.GangService",
    "incidents.v1.PoliceCommandService",
    "incidents.v1.AssetRecoveryService",
    "incidents.v1.EventLogService",
    "incidents.v1.StatisticsService",
    "incidents.v1.IncidentQueryService",
    "incidents.v1.WaveService",
    "incidents.v1.CommandQueryService",
    "incidents.v1.AssetStatisticsService",
    "incidents.v1.ProjectionAdminService",
    "incidents.v1.AuditService",
}


def _replayed(server, rpc, request, original) -> None:
    """The retry returns the original result, flagged as replayed, and writes nothing."""
    before = checks.head(server)
    retry = rpc(request, metadata=ACTOR_METADATA).result
    assert retry.replayed
    assert (retry.aggregate_id, retry.version, retry.position) == (
        original.aggregate_id,
        original.version,
        original.position,
    )
    assert checks.head(server) == before


def test_a_retried_report_returns_the_original_incident_and_writes_nothing(server, incidents):
    request = b.shooting()
    original = incidents.ReportShooting(request, metadata=ACTOR_METADATA).result
    assert not original.replayed
    for _ in range(3):
        _replayed(server, incidents.ReportShooting, request, original)
    # Still a single incident with a single event.
    got = incidents.GetIncident(b.get_incident(original.aggregate_id))
    assert [e.event_type for e in got.history] == ["ShootingReported"]


def test_every_kind_of_write_is_replayed_on_retry(server, incidents, gangs, commands, assets):
    incident_id = checks.new_incident(incidents)
    gang_id = checks.new_gang(gangs)
    case_id = assets.RecordAssetSeizure(b.seizure(), metadata=ACTOR_METADATA).result.aggregate_id
    writes = [
        (incidents.ReviseCasualties, b.casualties(incident_id)),
        (incidents.AmendIncident, b.amendment(incident_id)),
        (incidents.AttributeToGang, b.attribution(incident_id, gang_id)),
        (gangs.AddGangAlias, b.alias(gang_id)),
        (commands.UnifyPoliceCommand, b.unify()),
        (assets.ConfiscateAssets, b.confiscation(case_id, 1_000)),
        (assets.ReinvestAssets, b.reinvestment(case_id, 10)),
        (assets.ReleaseAssets, b.release(case_id, 10)),
    ]
    for rpc, request in writes:
        original = rpc(request, metadata=ACTOR_METADATA).result
        _replayed(server, rpc, request, original)


def test_a_retry_is_replayed_even_where_repeating_the_write_would_break_a_rule(
    server, gangs, commands
):
    # Adding the same alias twice, or ending a command twice, would be FAILED_PRECONDITION.
    gang_id = checks.new_gang(gangs)
    add = b.alias(gang_id)
    added = gangs.AddGangAlias(add, metadata=ACTOR_METADATA).result
    _replayed(server, gangs.AddGangAlias, add, added)
    command_id = commands.UnifyPoliceCommand(b.unify(), metadata=ACTOR_METADATA).result.aggregate_id
    end = b.end_command(command_id)
    original = commands.EndUnifiedCommand(end, metadata=ACTOR_METADATA).result
    _replayed(server, commands.EndUnifiedCommand, end, original)


def test_concurrent_duplicates_of_one_request_write_once(server):
    request = b.shooting()

    def send(_: int):
        with server.channel() as channel:
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            return stub.ReportShooting(request, metadata=ACTOR_METADATA).result

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    # One of them wrote; the others were answered with its result.
    assert sum(not r.replayed for r in results) == 1
    assert {(r.aggregate_id, r.version, r.position) for r in results} == {
        (results[0].aggregate_id, 1, checks.head(server))
    }


def test_the_same_request_id_on_another_rpc_is_already_exists(server, incidents, gangs):
    shooting = b.shooting()
    incidents.ReportShooting(shooting, metadata=ACTOR_METADATA)
    err = checks.rejected(
        server,
        gangs.RegisterGang,
        b.gang(request_id=shooting.request_id),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert detail(err, error_details_pb2.ErrorInfo).reason == "REQUEST_ID_REUSED"


def test_state_history_and_idempotency_survive_a_restart(server, incidents, gangs):
    report = b.shooting()
    first = incidents.ReportShooting(report, metadata=ACTOR_METADATA).result
    gang_id = checks.new_gang(gangs)
    attribute = b.attribution(first.aggregate_id, gang_id)
    attributed = incidents.AttributeToGang(attribute, metadata=ACTOR_METADATA).result
    before = incidents.GetIncident(b.get_incident(first.aggregate_id))
    head = checks.head(server)

    server.restart()
    with server.channel() as channel:
        stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
        # State and history are read back unchanged from the file.
        after = stub.GetIncident(b.get_incident(first.aggregate_id))
        assert after == before
        gang = gang_service_pb2_grpc.GangServiceStub(channel).GetGang(b.get_gang(gang_id))
        assert gang.gang.version == 1
        # Retries are still replayed...
        _replayed(server, stub.ReportShooting, report, first)
        _replayed(server, stub.AttributeToGang, attribute, attributed)
        # ...and a different payload under an old request id is still refused.
        reuse = b.shooting(request_id=report.request_id, killed=3)
        err = checks.rejected(server, stub.ReportShooting, reuse, grpc.StatusCode.ALREADY_EXISTS)
        assert detail(err, error_details_pb2.ErrorInfo).reason == "REQUEST_ID_REUSED"
        # New writes continue the log after the old ones.
        revised = stub.ReviseCasualties(
            b.casualties(first.aggregate_id, expected_version=2), metadata=ACTOR_METADATA
        ).result
        assert (revised.version, revised.position) == (3, head + 1)


def test_state_survives_two_restarts_across_all_services(server, commands, assets):
    command_id = commands.UnifyPoliceCommand(b.unify(), metadata=ACTOR_METADATA).result.aggregate_id
    case_id = assets.RecordAssetSeizure(b.seizure(), metadata=ACTOR_METADATA).result.aggregate_id
    server.restart()
    server.restart()
    with server.channel() as channel:
        command_stub = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
        asset_stub = asset_service_pb2_grpc.AssetRecoveryServiceStub(channel)
        # The zone is still held after restarts: a second command is refused.
        checks.precondition(
            server,
            command_stub.UnifyPoliceCommand,
            b.unify(),
            rule="one_active_command_per_municipality",
            subject="municipalities/21001,21007,21013",
        )
        assert command_stub.GetUnifiedCommand(b.get_command(command_id)).command.version == 1
        case = asset_stub.GetAssetCase(b.get_case(case_id)).asset_case
        assert case.seized_value_cents == 1_000_000


@pytest.mark.parametrize(
    "method",
    ["/incidents.v1.IncidentService/ReportShooting", "/incidents.v1.GangService/GetGang"],
)
def test_undecodable_request_bytes_are_invalid_argument_not_internal(server, channel, method):
    raw = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    before = checks.head(server)
    with pytest.raises(grpc.RpcError) as failure:
        raw(b"\xff\xff\xff", metadata=ACTOR_METADATA)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in failure.value.details()
    assert checks.head(server) == before


@pytest.mark.parametrize("service", ["", *sorted(REGISTRY_SERVICES)])
def test_health_reports_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(channel):
    with pytest.raises(grpc.RpcError) as failure:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="nope.v1.X")
        )
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_registry_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = list(stub.ServerReflectionInfo(iter([request])))
    names = {service.name for service in reply.list_services_response.service}
    assert names >= REGISTRY_SERVICES | {"grpc.health.v1.Health"}
    assert {n for n in names if n.startswith("incidents.v1.")} == REGISTRY_SERVICES


def test_reflection_describes_the_incident_service(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="incidents.v1.IncidentService"
    )
    (reply,) = list(stub.ServerReflectionInfo(iter([request])))
    files = reply.file_descriptor_response.file_descriptor_proto
    assert files, reply.error_response.error_message
