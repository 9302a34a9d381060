"""Each call's metadata headers go into that call's events, never another's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from incident_registry_client.proto.incidents.v1 import incident_service_pb2 as pb

from tests.support import builders as b
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES


def test_concurrent_calls_each_record_their_own_actor_and_correlation(incidents):
    def report(i: int) -> tuple[str, str]:
        reply = incidents.ReportShooting(
            b.shooting(),
            metadata=(("x-actor", f"actor-{i}"), ("x-correlation-id", f"case-{i}")),
        )
        history = incidents.GetIncident(
            pb.GetIncidentRequest(incident_id=reply.result.aggregate_id)
        ).history
        return history[0].metadata.actor, history[0].metadata.correlation_id

    with ThreadPoolExecutor(max_workers=16) as pool:
        recorded = list(pool.map(report, range(200)))
    assert recorded == [(f"actor-{i}", f"case-{i}") for i in range(200)]

    # A call without headers records no actor, whatever the calls before it said.
    reply = incidents.ReportShooting(b.shooting())
    history = incidents.GetIncident(pb.GetIncidentRequest(incident_id=reply.result.aggregate_id))
    assert history.history[0].metadata.actor == ""
