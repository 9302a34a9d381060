"""The database goes away under load and comes back: the server says so, then recovers.

`python -m service` runs on PostgreSQL through a TCP proxy that the test cuts (connections
dropped, new ones refused) and restores, while clients keep appending with deadlines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from incident_registry_client.proto.incidents.v1 import incident_service_pb2_grpc

from service.store.postgres import PostgresEventStore, PostgresSettings
from tests.e2e.test_server_process import ROOT, free_port, wait_serving
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.postgres import fresh_schema
from tests.support.tcp_proxy import TcpProxy

WRITERS = 4
DEADLINE = 3.0
"""Each call's own deadline, in seconds."""
LATE = 1.0
"""How far past its deadline a call may be answered (scheduling slack), in seconds."""
ACCEPTABLE_FAILURES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Outcome:
    """One call: its request, its result or status code, and when it started and ended."""

    request: Any
    result: Any
    code: grpc.StatusCode | None
    started: float
    ended: float


class Writers:
    """Threads that report shootings until stopped, each call bounded by DEADLINE."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self._threads = [
            threading.Thread(target=self._write, name=f"writer-{i}", daemon=True)
            for i in range(WRITERS)
        ]

    def start(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=DEADLINE + 10)
            assert not thread.is_alive(), "a writer hung"

    def acknowledged_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for o in self.outcomes if o.code is None and o.started >= moment)

    def _write(self) -> None:
        with grpc.insecure_channel(self._target) as channel:
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            while not self._stop.is_set():
                request = b.shooting()
                started = time.monotonic()
                result, code = None, None
                try:
                    result = stub.ReportShooting(
                        request, metadata=ACTOR_METADATA, timeout=DEADLINE
                    ).result
                except grpc.RpcError as err:
                    code = err.code()
                ended = time.monotonic()
                with self._lock:
                    self.outcomes.append(Outcome(request, result, code, started, ended))
                if code is not None:
                    time.sleep(0.05)


def _status(health: Any, name: str) -> int | None:
    try:
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=1)
    except grpc.RpcError:
        return None
    return int(reply.status)


def _wait_status(health: Any, name: str, wanted: int, timeout: float) -> float:
    """Wait until `name` reports `wanted`; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _status(health, name) == wanted:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{name!r} never became {wanted} within {timeout}s")


@pytest.fixture
def proxied_postgres(postgres: PostgresSettings) -> Iterator[tuple[PostgresSettings, TcpProxy]]:
    """A fresh schema, and a proxy in front of its server."""
    with fresh_schema(postgres) as pg:
        proxy = TcpProxy(pg.host, pg.port)
        try:
            yield pg, proxy
        finally:
            proxy.close()


@pytest.fixture
def server(proxied_postgres: tuple[PostgresSettings, TcpProxy], tmp_path: Path) -> Iterator[str]:
    """`python -m service` on the proxied database; its address."""
    pg, proxy = proxied_postgres
    port = free_port()
    log = tmp_path / "service.log"
    env = {
        **os.environ,
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_STORE": "postgres",
        "INCIDENTS_POSTGRES_HOST": proxy.host,
        "INCIDENTS_POSTGRES_PORT": str(proxy.port),
        "INCIDENTS_POSTGRES_DB": pg.dbname,
        "INCIDENTS_POSTGRES_USER": pg.user,
        "INCIDENTS_POSTGRES_PASSWORD": pg.password,
        "INCIDENTS_POSTGRES_SCHEMA": pg.schema,
        "INCIDENTS_POSTGRES_CONNECT_TIMEOUT": "1",
        "INCIDENTS_POSTGRES_LOCK_TIMEOUT": "1",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    target = f"127.0.0.1:{port}"
    try:
        try:
            wait_serving(target, timeout=30)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{log.read_text()[-3000:]}") from None
        yield target
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        events = log.read_text()
        assert process.returncode == 0, events[-3000:]
        # Each transition is logged once.
        assert events.count('"store_unreachable"') == 1, events[-3000:]
        assert events.count('"store_reachable"') == 1, events[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_losing_the_database_fails_calls_cleanly_and_recovers_by_itself(
    server: str, proxied_postgres: tuple[PostgresSettings, TcpProxy]
) -> None:
    pg, proxy = proxied_postgres
    with grpc.insecure_channel(server) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        writers = Writers(server).start()
        try:
            # Writes go through while the database is there.
            started = time.monotonic()
            while writers.acknowledged_since(started) < 10:
                assert time.monotonic() - started < 15, "no writes before the cut"
                time.sleep(0.05)

            proxy.cut()
            cut = time.monotonic()
            _wait_status(health, "readiness", NOT_SERVING, timeout=10)
            assert _status(health, "") == NOT_SERVING
            assert _status(health, "liveness") == SERVING
            # Calls keep failing while the database is away; the process stays alive.
            time.sleep(2 * DEADLINE)
            assert _status(health, "liveness") == SERVING
            assert _status(health, "readiness") == NOT_SERVING

            proxy.restore()
            restored = time.monotonic()
            _wait_status(health, "readiness", SERVING, timeout=15)
            assert _status(health, "") == SERVING
            # Writes succeed again by themselves, without a restart.
            while writers.acknowledged_since(restored) < 10:
                assert time.monotonic() - restored < 20, "writes did not recover"
                time.sleep(0.05)
        finally:
            writers.stop()
        assert _status(health, "liveness") == SERVING

    outcomes = writers.outcomes
    failures = [o for o in outcomes if o.code is not None]
    during_cut = [o for o in outcomes if o.started >= cut + DEADLINE + LATE and o.ended <= restored]
    # Calls made while the database was away failed, with statuses a client retries on ...
    assert during_cut
    assert all(o.code is not None for o in during_cut)
    assert {o.code for o in failures} <= ACCEPTABLE_FAILURES, {o.code for o in failures}
    # ... and no call outlived its own deadline.
    slowest = max(o.ended - o.started for o in outcomes)
    assert slowest <= DEADLINE + LATE, slowest

    # Every acknowledged write is in the log exactly once.
    acknowledged = [o for o in outcomes if o.code is None]
    store = PostgresEventStore(pg, create_schema=False)
    try:
        logged = store.read_page(after=0, limit=len(outcomes) + 1).notifications
        records = store.find_requests([o.request.request_id for o in acknowledged])
    finally:
        store.close()
    assert len(logged) <= len(outcomes)
    by_position = {n.id: n for n in logged}
    streams: dict[Any, int] = {}
    for notification in logged:
        streams[notification.originator_id] = streams.get(notification.originator_id, 0) + 1
    for outcome in acknowledged:
        notification = by_position[outcome.result.position]
        assert str(notification.originator_id) == outcome.result.aggregate_id
        assert streams[notification.originator_id] == 1
        record = records[outcome.request.request_id]
        assert record.position == outcome.result.position
