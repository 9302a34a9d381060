"""Two server processes and a projection worker on one PostgreSQL database, as in production.

Several clients write through both replicas at once, retry each request on the other replica,
and race to unify the same police zone. Afterwards every acknowledged write is in the log
exactly once, at the position it was acknowledged with, only one unified command won, and the
worker's statistics equal a clean rebuild of the log.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    command_service_pb2_grpc,
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    incident_service_pb2_grpc,
    projection_admin_service_pb2_grpc,
    statistics_service_pb2_grpc,
)

from service.store.postgres import PostgresEventStore
from tests.e2e.test_projection_worker import _rebuilt, _rows, _start, _wait_all_caught_up
from tests.e2e.test_projection_worker import _wait_serving as wait_started
from tests.e2e.test_server_process import free_port
from tests.e2e.test_server_processes import postgres_env
from tests.support import builders as b
from tests.support.postgres import fresh_schema

CLIENTS = 6
REQUESTS_PER_CLIENT = 40
RACERS = 8


class Client:
    """A client with a channel to each replica; it sends each request to one, then the other."""

    def __init__(self, targets: list[str]) -> None:
        self.channels = [grpc.insecure_channel(target) for target in targets]
        self.incidents = [incident_service_pb2_grpc.IncidentServiceStub(c) for c in self.channels]

    def report_twice(self, number: int) -> tuple[str, Any, Any]:
        """Report a shooting through one replica, then retry it through the other."""
        request = b.shooting(killed=number % 2, injured=1 + number % 3)
        first = self.incidents[number % 2].ReportShooting(request, timeout=20).result
        again = self.incidents[(number + 1) % 2].ReportShooting(request, timeout=20).result
        return request.request_id, first, again

    def close(self) -> None:
        """Close both channels."""
        for channel in self.channels:
            channel.close()


def read_log(target: str) -> list[Any]:
    """Every event of the log, read through a replica page by page."""
    events: list[Any] = []
    with grpc.insecure_channel(target) as channel:
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        position = 0
        while True:
            page = log.ReadAll(
                event_log_service_pb2.ReadAllRequest(from_position=position, limit=1000),
                timeout=20,
            )
            events.extend(page.events)
            if not page.next_position:
                return events
            position = page.next_position


def race_to_unify(targets: list[str]) -> Counter[str]:
    """RACERS clients unify the same police zone at once, half through each replica."""
    barrier = threading.Barrier(RACERS)

    def racer(number: int) -> str:
        with grpc.insecure_channel(targets[number % 2]) as channel:
            commands = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
            request = b.unify()
            barrier.wait(timeout=20)
            try:
                commands.UnifyPoliceCommand(request, timeout=20)
            except grpc.RpcError as err:
                return str(err.code().name)
            return "OK"

    with ThreadPoolExecutor(RACERS) as pool:
        return Counter(pool.map(racer, range(RACERS)))


def test_two_replicas_and_a_worker_lose_nothing_and_double_nothing(tmp_path: Path, postgres):
    with fresh_schema(postgres) as pg:
        ports = [free_port(), free_port()]
        targets = [f"127.0.0.1:{port}" for port in ports]
        common = {
            **postgres_env(pg),
            "INCIDENTS_PROJECTIONS_IN_PROCESS": "false",
            "INCIDENTS_LOG_LEVEL": "warning",
            "INCIDENTS_TEST_LOG_DIR": str(tmp_path),
        }
        processes: list[subprocess.Popen[str]] = []
        try:
            # Two replicas (each its own process and pool) and one projection worker.
            for target in targets:
                env = {**common, "INCIDENTS_LISTEN_ADDRESS": target}
                processes.append(_start("service", env))
            processes.append(_start("projections", common))
            for target in targets:
                wait_started(target, common)

            clients = [Client(targets) for _ in range(CLIENTS)]
            try:
                with ThreadPoolExecutor(CLIENTS + 1) as pool:
                    race = pool.submit(race_to_unify, targets)
                    results = list(
                        pool.map(
                            lambda n: clients[n % CLIENTS].report_twice(n),
                            range(CLIENTS * REQUESTS_PER_CLIENT),
                        )
                    )
                    outcomes = race.result()
            finally:
                for client in clients:
                    client.close()

            # The retry on the other replica was answered from the first one's record.
            for _, first, again in results:
                assert not first.replayed
                assert again.replayed
                assert (again.aggregate_id, again.position) == (first.aggregate_id, first.position)
            # Exactly one of the racing commands won, on whichever replica it arrived.
            assert outcomes == Counter({"OK": 1, "FAILED_PRECONDITION": RACERS - 1})

            # Every acknowledged report is in the log once, where it was acknowledged.
            events = read_log(targets[1])
            positions = [event.position for event in events]
            # In order and unique (PostgreSQL may skip a position a losing transaction took).
            assert positions == sorted(set(positions))
            by_position = {event.position: event for event in events}
            for _, first, _ in results:
                event = by_position[first.position]
                assert event.stream_id == first.aggregate_id
                assert event.event_type == "ShootingReported"
            reported = [e for e in events if e.event_type == "ShootingReported"]
            assert len(reported) == len(results) == len({r[0] for r in results})

            # The worker's statistics, read through either replica, equal a clean rebuild.
            with grpc.insecure_channel(targets[0]) as channel:
                admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
                _wait_all_caught_up(admin, seconds=60)
                served = _rows(
                    statistics_service_pb2_grpc.StatisticsServiceStub(channel), positions[-1]
                )
            with grpc.insecure_channel(targets[1]) as channel:
                stub = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
                assert _rows(stub, positions[-1]) == served
            assert sum(row[2] for row in served) == len(reported)
            store = PostgresEventStore(pg)
            try:
                assert served == _rebuilt(store, tmp_path / "rebuilt.sqlite")
            finally:
                store.close()
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        assert [process.returncode for process in processes] == [0, 0, 0]
