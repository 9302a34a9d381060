"""A projection that cannot apply an event stops visibly, instead of skipping it."""

from __future__ import annotations

import time

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as spb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2_grpc

from tests.support import builders as b
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES


def test_a_failing_projection_is_reported_not_skipped(server, incidents, monkeypatch):
    statistics = server.projections.runner("statistics")

    def broken(tx: object, events: object) -> None:
        raise RuntimeError("cannot apply event")

    # The projection fails on the next page it applies.
    monkeypatch.setattr(statistics.projection, "apply", broken)
    incidents.ReportShooting(b.shooting())
    deadline = time.monotonic() + 10
    while statistics.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert statistics.failure is not None
    assert statistics.failure.endswith("RuntimeError: cannot apply event")

    with server.channel() as channel:
        stub = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetAreaStatistics(
                spb.GetAreaStatisticsRequest(
                    area_kind=spb.AREA_KIND_MUNICIPALITY, period_kind=spb.PERIOD_KIND_YEAR
                ),
                timeout=5,
            )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot apply event" in info.value.details()
