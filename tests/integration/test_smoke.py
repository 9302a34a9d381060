from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from incident_registry_client.proto.incidents.v1 import incident_pb2
from incident_registry_client.proto.incidents.v1 import incident_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.incident_service_pb2_grpc import (
    IncidentServiceStub,
)

from tests.support.stores import BOTH_STORES


def test_a_reported_shooting_can_be_read_back(incidents):
    occurred = Timestamp()
    occurred.FromDatetime(datetime.now(UTC) - timedelta(hours=2))
    reply = incidents.ReportShooting(
        pb.ReportShootingRequest(
            request_id="smoke-1",
            occurred_at=occurred,
            occurred_at_precision=incident_pb2.TIME_PRECISION_MINUTE,
            municipality_code="21001",
        )
    )
    got = incidents.GetIncident(pb.GetIncidentRequest(incident_id=reply.result.aggregate_id))
    assert got.incident.police_zone_code == "5341"
    assert [e.event_type for e in got.history] == ["ShootingReported"]


@BOTH_STORES
def test_a_reported_shooting_can_be_read_back_on_either_store(incidents, server):
    occurred = Timestamp()
    occurred.FromDatetime(datetime.now(UTC) - timedelta(hours=2))
    reply = incidents.ReportShooting(
        pb.ReportShootingRequest(
            request_id="smoke-2",
            occurred_at=occurred,
            occurred_at_precision=incident_pb2.TIME_PRECISION_MINUTE,
            municipality_code="21004",
        )
    )
    server.restart()
    with server.channel() as channel:
        got = IncidentServiceStub(channel).GetIncident(
            pb.GetIncidentRequest(incident_id=reply.result.aggregate_id)
        )
    assert got.incident.police_zone_code == "5339"
    assert got.history[0].position == reply.result.position
