"""Stopping the server under load: no acknowledged write is lost, no write is duplicated."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    incident_service_pb2_grpc,
)

from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.harness import ServerHarness
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

CALLS = 50
ACCEPTABLE_FAILURES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


@pytest.mark.parametrize("grace", [5.0, 0.0], ids=["drained", "cut-short"])
def test_stopping_under_load_loses_no_acknowledged_shooting(tmp_path, backend_factory, grace):
    db_path = tmp_path / "registry.sqlite"
    harness = ServerHarness(db_path, backend_factory=backend_factory).start()
    requests = [b.shooting() for _ in range(CALLS)]
    # Each commit takes a little longer, so that calls are still in flight at stop().
    assert harness.registry is not None
    real_append = harness.registry.backend.append

    def slow_append(writes):
        time.sleep(0.02)
        return real_append(writes)

    harness.registry.backend.append = slow_append
    start, first_answer = threading.Barrier(CALLS + 1), threading.Event()
    target = harness.target

    def report(request):
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            start.wait(timeout=10)
            try:
                result = stub.ReportShooting(request, metadata=ACTOR_METADATA, timeout=20).result
            except grpc.RpcError as err:
                return err.code()
            finally:
                first_answer.set()
            return result

    try:
        with ThreadPoolExecutor(max_workers=CALLS) as pool:
            outcomes = [pool.submit(report, request) for request in requests]
            start.wait(timeout=10)
            # Stop as soon as the first call is answered, while the others are in flight.
            assert first_answer.wait(timeout=10)
            harness.stop(grace=grace)
            results = [outcome.result(timeout=30) for outcome in outcomes]
    finally:
        harness.stop()

    acknowledged = [
        (request, result)
        for request, result in zip(requests, results, strict=True)
        if not isinstance(result, grpc.StatusCode)
    ]
    failures = [r for r in results if isinstance(r, grpc.StatusCode)]
    # Every call either succeeded or was refused or cut short by the shutdown.
    assert acknowledged
    assert set(failures) <= ACCEPTABLE_FAILURES, failures

    reopened = ServerHarness(db_path, backend_factory=backend_factory).start()
    try:
        with reopened.channel() as channel:
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            # Every acknowledged shooting is in the log, under its request id.
            for request, result in acknowledged:
                got = stub.GetIncident(b.get_incident(result.aggregate_id))
                (event,) = got.history
                assert event.metadata.request_id == request.request_id
                assert event.position == result.position
            # Retrying every call writes each shooting exactly once: the acknowledged ones,
            # and any failed one that was committed anyway, are replayed.
            retried = [stub.ReportShooting(r, metadata=ACTOR_METADATA).result for r in requests]
            for request, result in acknowledged:
                again = retried[requests.index(request)]
                assert again.replayed
                assert again.aggregate_id == result.aggregate_id
            assert len({r.aggregate_id for r in retried}) == CALLS
            assert reopened.registry is not None
            logged = reopened.registry.backend.read_page(after=0, limit=CALLS + 1).notifications
            assert len(logged) == CALLS
    finally:
        reopened.stop()


def test_a_live_subscription_ends_with_unavailable_at_shutdown_without_delaying_it(
    tmp_path, backend_factory
):
    harness = ServerHarness(tmp_path / "registry.sqlite", backend_factory=backend_factory).start()
    channel = harness.channel()
    log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    stream = log.Subscribe(event_log_service_pb2.SubscribeRequest(from_start=True))
    # An empty log: the first message says the subscriber is caught up, then it waits live.
    assert next(stream).WhichOneof("message") == "caught_up"
    started = time.monotonic()
    harness.stop(grace=10)
    # The subscription did not hold the shutdown for the whole grace period ...
    assert time.monotonic() - started < 5
    # ... and its client is told to come back, not that the stream is complete.
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
