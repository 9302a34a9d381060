"""Two servers on one store behave as one registry.

Replicas are separate servers (in production, separate processes) on the same PostgreSQL
schema, or on the same SQLite file: what is written through one is pushed to the other's
subscribers, is idempotent across both, and is read back on the other with min_position.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import (
    common_pb2,
    incident_query_service_pb2_grpc,
    incident_service_pb2_grpc,
    statistics_service_pb2_grpc,
)
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as log_pb
from incident_registry_client.proto.incidents.v1 import (
    incident_query_service_pb2 as query_pb,
)
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as stats_pb

from service.app.event_log import FollowSettings
from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, detail
from tests.support.harness import ServerHarness
from tests.support.log_helpers import Subscriber, events_of
from tests.support.stores import BOTH_STORES

POSTGRES_ONLY = pytest.mark.parametrize("backend_factory", ["postgres"], indirect=True)

SENDERS = 16
"""Concurrent calls per race, split evenly over the two replicas."""
ROUNDS = 3
WAIT = 10.0
"""How long a call or a subscription message is waited for."""
NEVER = 600.0
"""A poll interval (and subscription idle wait) far beyond any test's duration."""


@pytest.fixture
def replica(server: ServerHarness) -> Iterator[ServerHarness]:
    """A second server on the test's store."""
    other = server.replica().start()
    yield other
    other.stop()


def _race(replicas: list[ServerHarness], requests: list[Any]) -> list[Any]:
    """Send `requests[i]` to `replicas[i % 2]`, all at once; return results or errors."""
    channels = [r.channel() for r in replicas]
    try:
        stubs = [incident_service_pb2_grpc.IncidentServiceStub(c) for c in channels]
        for channel in channels:
            grpc.channel_ready_future(channel).result(timeout=WAIT)
        barrier = threading.Barrier(len(requests))

        def send(index: int) -> Any:
            stub = stubs[index % len(stubs)]
            barrier.wait(timeout=WAIT)
            try:
                return stub.ReportShooting(
                    requests[index], metadata=ACTOR_METADATA, timeout=WAIT
                ).result
            except grpc.RpcError as err:
                return err

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(pool.map(send, range(len(requests))))
    finally:
        for channel in channels:
            channel.close()


def _appended(replica: ServerHarness, after: int) -> list[int]:
    """The positions written after `after` (on PostgreSQL a lost race leaves a gap)."""
    assert replica.registry is not None
    page = replica.registry.backend.read_page(after=after, limit=100)
    return [n.id for n in page.notifications]


def _history(replica: ServerHarness, incident_id: str) -> list[Any]:
    with replica.channel() as channel:
        stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
        return list(stub.GetIncident(b.get_incident(incident_id), timeout=WAIT).history)


@POSTGRES_ONLY
def test_a_write_through_one_replica_is_pushed_to_a_subscriber_on_the_other(server):
    # The other replica polls the head, and re-reads an idle subscription, only every ten
    # minutes: within the test, only the NOTIFY sent with the commit can wake its followers.
    quiet = server.replica(poll_interval=NEVER, follow=FollowSettings(idle_wait_seconds=NEVER))
    quiet.start()
    try:
        with quiet.channel() as channel:
            subscriber = Subscriber(channel, log_pb.SubscribeRequest(from_end=True))
            try:
                subscriber.until_caught_up(timeout=WAIT)
                with server.channel() as writes:
                    stub = incident_service_pb2_grpc.IncidentServiceStub(writes)
                    written = stub.ReportShooting(b.shooting(), metadata=ACTOR_METADATA).result
                got = subscriber.until(lambda messages: bool(events_of(messages)), timeout=WAIT)
            finally:
                subscriber.cancel()
    finally:
        quiet.stop()
    (event,) = events_of(got)
    assert (event.stream_id, event.position) == (written.aggregate_id, written.position)


@BOTH_STORES
def test_one_request_sent_to_both_replicas_at_once_is_written_once(server, replica):
    replicas = [server, replica]
    for _ in range(ROUNDS):
        head = checks.head(server)
        request = b.shooting()
        results = _race(replicas, [request] * SENDERS)
        assert not [r for r in results if isinstance(r, grpc.RpcError)], results
        # One call wrote; every other one, on either replica, was answered with its result.
        assert sum(not r.replayed for r in results) == 1
        outcomes = {(r.aggregate_id, r.version, r.position) for r in results}
        assert outcomes == {(results[0].aggregate_id, 1, results[0].position)}
        assert _appended(server, head) == [results[0].position]
        for each in replicas:
            (event,) = _history(each, results[0].aggregate_id)
            assert event.metadata.request_id == request.request_id


@BOTH_STORES
def test_a_request_id_sent_with_two_contents_to_both_replicas_writes_one_of_them(server, replica):
    replicas = [server, replica]
    for _ in range(ROUNDS):
        head = checks.head(server)
        one = b.shooting(killed=1)
        other = b.shooting(request_id=one.request_id, killed=2)
        # Each replica gets both contents: calls 0 and 1 carry `one`, 2 and 3 `other`, ...
        requests = [one if index % 4 < 2 else other for index in range(SENDERS)]
        results = _race(replicas, requests)
        accepted = [r for r in results if isinstance(r, common_pb2.WriteResult)]
        refused = [r for r in results if isinstance(r, grpc.RpcError)]
        # Whichever content was written first, every call with it got its result ...
        assert {(r.aggregate_id, r.version, r.position) for r in accepted} == {
            (accepted[0].aggregate_id, 1, accepted[0].position)
        }
        assert sum(not r.replayed for r in accepted) == 1
        (event,) = _history(replica, accepted[0].aggregate_id)
        winner = one if event.shooting_reported.killed == 1 else other
        assert [isinstance(r, common_pb2.WriteResult) for r in results] == [
            request is winner for request in requests
        ]
        # ... and every call with the other content was refused, on both replicas.
        assert len(refused) == SENDERS // 2
        for err in refused:
            assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
            assert detail(err, error_details_pb2.ErrorInfo).reason == "REQUEST_ID_REUSED"
        assert _appended(replica, head) == [accepted[0].position]
    # Once written, the id is refused with any other content on either replica.
    for each in replicas:
        with each.channel() as channel:
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            reused = b.shooting(request_id=one.request_id, killed=3)
            err = checks.rejected(each, stub.ReportShooting, reused, grpc.StatusCode.ALREADY_EXISTS)
            assert detail(err, error_details_pb2.ErrorInfo).reason == "REQUEST_ID_REUSED"


@BOTH_STORES
def test_a_write_on_one_replica_is_read_back_on_the_other_with_min_position(server, replica):
    written: list[str] = []
    for writer, reader in ((server, replica), (replica, server), (server, replica)):
        with writer.channel() as channel:
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            result = stub.ReportShooting(b.shooting(), metadata=ACTOR_METADATA).result
        written.append(result.aggregate_id)
        with reader.channel() as channel:
            queries = incident_query_service_pb2_grpc.IncidentQueryServiceStub(channel)
            listed = queries.ListIncidents(
                query_pb.ListIncidentsRequest(min_position=result.position), timeout=WAIT
            )
            statistics = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
            counted = statistics.GetAreaStatistics(
                stats_pb.GetAreaStatisticsRequest(
                    area_kind=stats_pb.AREA_KIND_MUNICIPALITY,
                    area_codes=[b.ANDERLECHT],
                    period_kind=stats_pb.PERIOD_KIND_YEAR,
                    min_position=result.position,
                ),
                timeout=WAIT,
            )
        # The reader's models include every write so far, whichever replica took it.
        assert listed.position >= result.position
        assert sorted(i.incident_id for i in listed.incidents) == sorted(written)
        assert sum(row.incidents for row in counted.rows) == len(written)
