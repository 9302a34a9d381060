"""Racing UnifyPoliceCommand calls over overlapping municipalities: exactly one command wins."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import structlog
from incident_registry_client.proto.incidents.v1 import (
    command_pb2,
    command_service_pb2_grpc,
    incident_service_pb2_grpc,
)

from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.harness import ServerHarness
from tests.support.stores import BOTH_STORES

RACERS = 8
ROUNDS = 3
# Every request includes Forest (21007), so any two requests overlap.
OVERLAPPING = [
    {"municipality_codes": ["21007"], "police_zone_codes": []},
    {"municipality_codes": ["21007", "21001"], "police_zone_codes": []},
    {"municipality_codes": ["21013", "21007"], "police_zone_codes": []},
    {"municipality_codes": [], "police_zone_codes": ["5341"]},
    {"municipality_codes": ["21004", "21007"], "police_zone_codes": []},
    {"municipality_codes": ["21007"], "police_zone_codes": ["5343"]},
    {"municipality_codes": ["21005", "21007", "21001"], "police_zone_codes": []},
    {"municipality_codes": ["21007"], "police_zone_codes": ["5339"]},
]


@pytest.fixture
def replica(server: ServerHarness) -> Iterator[ServerHarness]:
    """A second server on the same store (SQLite file or PostgreSQL schema): a replica."""
    other = server.replica().start()
    yield other
    other.stop()


def _race(targets: list[ServerHarness]) -> list[tuple[int, Any]]:
    """Send the overlapping requests at once, each from its own thread and channel."""
    barrier = threading.Barrier(RACERS)

    def send(index: int) -> tuple[int, object]:
        target = targets[index % len(targets)]
        with target.channel() as channel:
            stub = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=10)
            request = b.unify(**OVERLAPPING[index])
            barrier.wait(timeout=10)
            try:
                return index, stub.UnifyPoliceCommand(request, metadata=ACTOR_METADATA).result
            except grpc.RpcError as err:
                return index, err.code()

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(send, range(RACERS)))


def _expanded(index: int) -> set[str]:
    zones = {
        "5341": {"21001", "21007", "21013"},
        "5343": {"21005", "21018", "21019"},
        "5339": {"21004", "21009"},
    }
    request = OVERLAPPING[index]
    codes = set(request["municipality_codes"])
    for zone in request["police_zone_codes"]:
        codes |= zones[zone]
    return codes


def _exactly_one_wins(targets: list[ServerHarness]) -> None:
    for _ in range(ROUNDS):
        outcomes = _race(targets)
        winners = [(i, r) for i, r in outcomes if not isinstance(r, grpc.StatusCode)]
        losers = [code for _, code in outcomes if isinstance(code, grpc.StatusCode)]
        # One command was created; every other request was refused by the rule.
        assert len(winners) == 1, outcomes
        assert losers == [grpc.StatusCode.FAILED_PRECONDITION] * (RACERS - 1)
        (index, result) = winners[0]
        assert (result.version, result.replayed) == (1, False)

        # Every server sees the one active command, with the winner's municipalities.
        for target in targets:
            with target.channel() as channel:
                stub = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
                command = stub.GetUnifiedCommand(b.get_command(result.aggregate_id)).command
                assert command.status == command_pb2.COMMAND_STATUS_ACTIVE
                assert set(command.municipality_codes) == _expanded(index)

        with targets[-1].channel() as channel:
            stub = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
            # The losers left no trace: what the winner does not hold is still free.
            everything = set().union(*(_expanded(i) for i in range(RACERS)))
            rest = sorted(everything - _expanded(index))
            extra = stub.UnifyPoliceCommand(
                b.unify(municipality_codes=rest, police_zone_codes=[]), metadata=ACTOR_METADATA
            ).result
            # End both commands so the next round starts from free municipalities.
            for command_id in (result.aggregate_id, extra.aggregate_id):
                stub.EndUnifiedCommand(b.end_command(command_id), metadata=ACTOR_METADATA)


def test_concurrent_unify_on_one_server_lets_exactly_one_command_win(server):
    _exactly_one_wins([server])


@BOTH_STORES
def test_concurrent_unify_on_two_replicas_of_one_store_lets_exactly_one_command_win(
    server, replica
):
    _exactly_one_wins([server, replica])


def test_a_request_refused_only_because_of_a_batch_mate_that_lost_a_race_is_retried(
    tmp_path, monkeypatch
):
    # The server's clock tells when a request has been validated and queued for the writer:
    # nothing awaits between reading the clock and queueing, so a callback scheduled on the
    # loop from the clock runs once the request waits on the writer.
    queued: dict[str, threading.Event] = {}

    def clock():
        request_id = structlog.contextvars.get_contextvars().get("request_id", "")
        if request_id in queued:
            asyncio.get_running_loop().call_soon(queued[request_id].set)
        return datetime.now(UTC)

    server = ServerHarness(tmp_path / "registry.sqlite", clock=clock).start()
    replica = ServerHarness(server.db_path).start()
    try:
        _batch_mate_scenario(server, replica, queued, monkeypatch)
    finally:
        replica.stop()
        server.stop()


def _batch_mate_scenario(server, replica, queued, monkeypatch) -> None:
    backend = server.registry.backend
    blocker = b.shooting()
    loser = b.unify(municipality_codes=["21007", "21004"], police_zone_codes=[])
    bystander = b.unify(municipality_codes=["21004"], police_zone_codes=[])
    rival = b.unify(municipality_codes=["21007"], police_zone_codes=[])
    held, released = threading.Event(), threading.Event()
    batches: list[set[str]] = []
    rival_results: list[object] = []
    real_find, real_append = backend.find_requests, backend.append

    # The writer is held on a first request, so that the next two are decided in one batch.
    def find_requests(ids):
        batches.append(set(ids))
        if blocker.request_id in ids:
            held.set()
            released.wait(timeout=10)
        return real_find(ids)

    # Just before that batch is appended, the replica takes Forest (21007).
    def append(writes):
        if not rival_results and any(w.request_id == loser.request_id for w in writes):
            with replica.channel() as channel:
                stub = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
                rival_results.append(stub.UnifyPoliceCommand(rival, metadata=ACTOR_METADATA))
        return real_append(writes)

    monkeypatch.setattr(backend, "find_requests", find_requests)
    monkeypatch.setattr(backend, "append", append)

    with server.channel() as channel:
        incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
        stub = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
        blocked = incidents.ReportShooting.future(blocker, metadata=ACTOR_METADATA)
        assert held.wait(timeout=10)
        calls = []
        for request in (loser, bystander):
            queued[request.request_id] = threading.Event()
            calls.append(stub.UnifyPoliceCommand.future(request, metadata=ACTOR_METADATA))
            assert queued[request.request_id].wait(timeout=10)
        released.set()
        blocked.result(timeout=10)
        assert {loser.request_id, bystander.request_id} in batches
        # The first request lost Forest to the replica: rightly refused.
        with pytest.raises(grpc.RpcError) as lost:
            calls[0].result(timeout=10)
        assert lost.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert rival_results
        # Ixelles (21004) was never held by a committed command: the second must succeed.
        assert calls[1].result(timeout=10).result.version == 1
