"""Waves detected by a separate projection worker, as in production, and served by the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    incident_service_pb2_grpc,
    wave_service_pb2,
    wave_service_pb2_grpc,
)

from tests.e2e.test_server_process import ROOT, free_port, wait_serving
from tests.support import builders as b
from tests.support.postgres import fresh_schema

WEDNESDAY = datetime(2024, 11, 27, 5, 10, tzinfo=UTC)
REPORTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request, tmp_path) -> Iterator[dict[str, str]]:
    """Settings that put the server and the worker on one store."""
    if request.param == "sqlite":
        yield {
            "INCIDENTS_SQLITE_PATH": str(tmp_path / "registry.sqlite"),
            "INCIDENTS_SQLITE_PROJECTIONS_PATH": str(tmp_path / "projections.sqlite"),
        }
        return
    with fresh_schema(request.getfixturevalue("postgres")) as pg:
        yield {
            "INCIDENTS_STORE": "postgres",
            "INCIDENTS_POSTGRES_HOST": pg.host,
            "INCIDENTS_POSTGRES_PORT": str(pg.port),
            "INCIDENTS_POSTGRES_DB": pg.dbname,
            "INCIDENTS_POSTGRES_USER": pg.user,
            "INCIDENTS_POSTGRES_PASSWORD": pg.password,
            "INCIDENTS_POSTGRES_SCHEMA": pg.schema,
        }


def _start(module: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_a_worker_records_the_wave_the_server_serves(store_env):
    port = free_port()
    env = {
        **store_env,
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_PROJECTIONS_IN_PROCESS": "false",
        "INCIDENTS_LOG_LEVEL": "warning",
        # The worker's rule, not the server's defaults, is the one that detects.
        "INCIDENTS_WAVE_MIN_SHOOTINGS": "3",
        "INCIDENTS_WAVE_WINDOW_HOURS": "48",
    }
    server = _start("service", env)
    worker = _start("projections", env)
    try:
        target = f"127.0.0.1:{port}"
        wait_serving(target)
        with grpc.insecure_channel(target) as channel:
            incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
            ids, last = [], 0
            for hours in (0, 26, 27.5, 46):
                reply = incidents.ReportShooting(
                    b.shooting(
                        occurred_at=b.ts(WEDNESDAY + timedelta(hours=hours)),
                        reported_at=b.ts(REPORTED),
                    ),
                    timeout=10,
                )
                ids.append(reply.result.aggregate_id)
                last = reply.result.position
            waves = wave_service_pb2_grpc.WaveServiceStub(channel)
            (wave,) = waves.ListWaves(
                wave_service_pb2.ListWavesRequest(min_position=last), timeout=20
            ).waves
            assert list(wave.incident_ids) == ids
            assert list(wave.detected_incident_ids) == ids[:3]
            assert wave.window_hours == 48
            log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
            (event,) = log.ReadAll(
                event_log_service_pb2.ReadAllRequest(
                    filter=event_log_service_pb2.EventFilter(event_types=["WaveDetected"])
                ),
                timeout=10,
            ).events
            assert event.stream_id == wave.wave_id
            assert event.position == wave.detected_position
        assert _stop(worker) == 0
    finally:
        for process in (worker, server):
            if process.poll() is None:
                _stop(process)
    assert server.returncode == 0
