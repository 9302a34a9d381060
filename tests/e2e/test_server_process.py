"""The server started the way users start it: `python -m service`, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from incident_registry_client.proto.incidents.v1 import gang_service_pb2, gang_service_pb2_grpc

from tests.support.postgres import fresh_schema

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_serving(target: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        # The typeshed stub of HealthStub declares no methods.
        health: Any = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise AssertionError(f"server at {target} never became SERVING")


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    def start(**env: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        variables = {
            **os.environ,
            "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "INCIDENTS_SQLITE_PATH": str(tmp_path / "registry.sqlite"),
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=variables,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        return process, f"127.0.0.1:{port}"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_server_serves_then_drains_and_exits_cleanly_on_sigterm(start_process):
    process, target = start_process()
    wait_serving(target)
    with grpc.insecure_channel(target) as channel:
        gangs = gang_service_pb2_grpc.GangServiceStub(channel)
        reply = gangs.RegisterGang(
            gang_service_pb2.RegisterGangRequest(request_id="e2e-1", name="Clan X"), timeout=5
        )
    # SIGTERM: in-flight calls finish, the store closes, the process exits 0.
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert events[0] == "server_started"
    assert events[-2:] == ["server_stopping", "server_stopped"]

    # The data survives: a new process on the same file finds the gang.
    process, target = start_process()
    wait_serving(target)
    with grpc.insecure_channel(target) as channel:
        gangs = gang_service_pb2_grpc.GangServiceStub(channel)
        got = gangs.GetGang(
            gang_service_pb2.GetGangRequest(gang_id=reply.result.aggregate_id), timeout=5
        )
    assert got.gang.name == "Clan X"


def test_server_refuses_to_start_with_an_invalid_catalog(start_process, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    process, _ = start_process(INCIDENTS_AREA_CATALOG=str(broken))
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "server_failed_to_start" in output


def test_server_refuses_an_invalid_setting(start_process):
    process, _ = start_process(INCIDENTS_LOG_FORMAT="xml")
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "INCIDENTS_LOG_FORMAT" in output


def test_server_runs_on_postgresql_when_configured(start_process, postgres):
    with fresh_schema(postgres) as pg:
        process, target = start_process(
            INCIDENTS_STORE="postgres",
            INCIDENTS_POSTGRES_HOST=pg.host,
            INCIDENTS_POSTGRES_PORT=str(pg.port),
            INCIDENTS_POSTGRES_DB=pg.dbname,
            INCIDENTS_POSTGRES_USER=pg.user,
            INCIDENTS_POSTGRES_PASSWORD=pg.password,
            INCIDENTS_POSTGRES_SCHEMA=pg.schema,
        )
        wait_serving(target)
        with grpc.insecure_channel(target) as channel:
            gangs = gang_service_pb2_grpc.GangServiceStub(channel)
            reply = gangs.RegisterGang(
                gang_service_pb2.RegisterGangRequest(request_id="e2e-pg", name="Clan Y"),
                timeout=5,
            )
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0
        started = json.loads(next(line for line in output.splitlines() if "server_started" in line))
        assert started["store"] == "postgres"
        assert reply.result.position == 1
