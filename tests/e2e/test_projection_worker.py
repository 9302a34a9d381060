"""Projections applied by a separate worker process, as in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2_grpc,
    projection_admin_service_pb2_grpc,
    statistics_service_pb2_grpc,
)
from incident_registry_client.proto.incidents.v1 import projection_admin_service_pb2 as apb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as spb

from projections.statistics_model import StatisticsProjection, query_statistics
from service.app.registry import Registry
from service.areas import load_catalog
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from service.store.postgres import PostgresEventStore
from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import registry_mapper
from tests.e2e.test_server_process import ROOT, free_port, wait_serving
from tests.support import builders as b
from tests.support.postgres import fresh_schema
from tests.support.projections import live_models, rebuild, rebuild_all

StoreOpener = Callable[[], EventStoreBackend]


def _start(module: str, env: dict[str, str]) -> subprocess.Popen[str]:
    # Errors go to a file named in the environment, so that a failed start can be shown.
    log = Path(env["INCIDENTS_TEST_LOG_DIR"]) / f"{module}.log"
    with log.open("a") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )


def _wait_serving(target: str, env: dict[str, str]) -> None:
    try:
        wait_serving(target, timeout=40.0)
    except AssertionError as err:
        logs = sorted(Path(env["INCIDENTS_TEST_LOG_DIR"]).glob("*.log"))
        tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs)
        raise AssertionError(f"{err}\n{tails}") from None


def _rows(stub, min_position: int) -> list[tuple[str, str, int, int, int]]:
    reply = stub.GetAreaStatistics(
        spb.GetAreaStatisticsRequest(
            area_kind=spb.AREA_KIND_MUNICIPALITY,
            period_kind=spb.PERIOD_KIND_DAY,
            min_position=min_position,
        ),
        timeout=20,
    )
    return sorted((r.area_code, r.period, r.incidents, r.killed, r.injured) for r in reply.rows)


def _rebuilt(store: EventStoreBackend, view_path: Path) -> list[tuple[str, str, int, int, int]]:
    """The same statistics rebuilt from the log on a fresh view."""
    view = rebuild(
        store, registry_mapper(), StatisticsProjection(load_catalog("brussels")), view_path
    )
    with view.transaction(write=False) as tx:
        rows = sorted(
            (r.area_code, r.period, r.incidents, r.killed, r.injured)
            for r in query_statistics(tx, "municipality", [], "day")
        )
    view.close()
    return rows


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(
    request, tmp_path
) -> Iterator[tuple[dict[str, str], Callable[[], EventStoreBackend]]]:
    """Settings that put the server and the worker on one store, and a way to open it."""
    if request.param == "sqlite":
        path = tmp_path / "registry.sqlite"
        yield (
            {
                "INCIDENTS_SQLITE_PATH": str(path),
                "INCIDENTS_SQLITE_PROJECTIONS_PATH": str(tmp_path / "projections.sqlite"),
            },
            lambda: SQLiteEventStore(path),
        )
        return
    with fresh_schema(request.getfixturevalue("postgres")) as pg:
        yield (
            {
                "INCIDENTS_STORE": "postgres",
                "INCIDENTS_POSTGRES_HOST": pg.host,
                "INCIDENTS_POSTGRES_PORT": str(pg.port),
                "INCIDENTS_POSTGRES_DB": pg.dbname,
                "INCIDENTS_POSTGRES_USER": pg.user,
                "INCIDENTS_POSTGRES_PASSWORD": pg.password,
                "INCIDENTS_POSTGRES_SCHEMA": pg.schema,
            },
            lambda: PostgresEventStore(pg),
        )


def test_a_worker_killed_mid_load_resumes_without_double_counting(tmp_path, store_env):
    port = free_port()
    store_settings, open_store = store_env
    env = {
        **store_settings,
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_PROJECTIONS_IN_PROCESS": "false",
        "INCIDENTS_LOG_LEVEL": "warning",
        "INCIDENTS_TEST_LOG_DIR": str(tmp_path),
    }
    server = _start("service", env)
    worker = _start("projections", env)
    try:
        target = f"127.0.0.1:{port}"
        _wait_serving(target, env)
        with grpc.insecure_channel(target) as channel:
            incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
            statistics = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
            last = [0]
            acknowledged = [0]
            counting = threading.Lock()
            stop = threading.Event()

            def write_until_stopped() -> None:
                while not stop.is_set():
                    reply = incidents.ReportShooting(b.shooting(killed=1, injured=2), timeout=10)
                    with counting:
                        last[0] = max(last[0], reply.result.position)
                        acknowledged[0] += 1

            writers = [threading.Thread(target=write_until_stopped) for _ in range(4)]
            for thread in writers:
                thread.start()
            # The worker is killed while it applies pages under load, then started again.
            time.sleep(1.5)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            time.sleep(0.5)
            worker = _start("projections", env)
            time.sleep(1.0)
            stop.set()
            for thread in writers:
                thread.join()
            served = _rows(statistics, last[0])
            admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
            _wait_all_caught_up(admin)
        # Every report counts once (the log also holds derived events, e.g. waves).
        assert sum(row[2] for row in served) == acknowledged[0]
        store = open_store()
        registry = Registry(store, load_catalog("brussels"), wave_rule=WaveRule())
        try:
            assert served == _rebuilt(store, tmp_path / "rebuilt.sqlite")
            # Every read model, not only the statistics, equals a clean rebuild.
            head = store.head()
            live = live_models(registry, tmp_path / "projections.sqlite")
            assert live["incidents"]["proj_incidents"], "the incidents model is filled"
            assert live == rebuild_all(registry, tmp_path / "rebuilt-all.sqlite")
            assert store.head() == head  # the rebuild recorded no second wave
        finally:
            registry.close()
    finally:
        for process in (worker, server):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert worker.returncode == 0
    assert server.returncode == 0


def test_operations_through_a_server_steer_the_worker(tmp_path, store_env):
    port = free_port()
    store_settings, _ = store_env
    env = {
        **store_settings,
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_PROJECTIONS_IN_PROCESS": "false",
        "INCIDENTS_LOG_LEVEL": "warning",
        "INCIDENTS_TEST_LOG_DIR": str(tmp_path),
    }
    server = _start("service", env)
    worker = _start("projections", env)
    try:
        target = f"127.0.0.1:{port}"
        _wait_serving(target, env)
        with grpc.insecure_channel(target) as channel:
            incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
            statistics = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
            admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
            first = incidents.ReportShooting(b.shooting(), timeout=10).result.position
            assert sum(row[2] for row in _rows(statistics, first)) == 1

            admin.PauseProjection(apb.PauseProjectionRequest(name="statistics"), timeout=10)
            # The worker sees the pause between two pages, within about a second; a report
            # it applied before seeing it is followed by another until one stays unapplied.
            reports, deadline = 1, time.monotonic() + 30
            while True:
                second = incidents.ReportShooting(b.shooting(), timeout=10).result.position
                reports += 1
                time.sleep(1.0)
                info = _info(admin)
                if info.position < second:
                    break
                assert time.monotonic() < deadline, "the worker kept applying after the pause"
            assert info.state == apb.PROJECTION_STATE_PAUSED
            assert not info.applied_here
            assert info.lag_events >= 1
            time.sleep(1.0)
            assert _info(admin).position == info.position, "a paused projection moved"

            admin.ResumeProjection(apb.ResumeProjectionRequest(name="statistics"), timeout=10)
            assert sum(row[2] for row in _rows(statistics, second)) == reports

            rebuilt = admin.RebuildProjection(
                apb.RebuildProjectionRequest(name="statistics"), timeout=10
            )
            assert rebuilt.projection.start_position == 0
            deadline = time.monotonic() + 20
            while _info(admin).position < second:
                assert time.monotonic() < deadline, "the worker did not rebuild"
                time.sleep(0.1)
            assert sum(row[2] for row in _rows(statistics, second)) == reports
    finally:
        for process in (worker, server):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert worker.returncode == 0
    assert server.returncode == 0


def _wait_all_caught_up(admin, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        listed = admin.ListProjections(apb.ListProjectionsRequest(), timeout=10).projections
        if all(p.lag_events == 0 and p.position == p.head for p in listed):
            return
        assert time.monotonic() < deadline, [(p.name, p.position, p.head) for p in listed]
        time.sleep(0.1)


def _info(admin) -> apb.ProjectionInfo:
    listed = admin.ListProjections(apb.ListProjectionsRequest(), timeout=10).projections
    (found,) = [p for p in listed if p.name == "statistics"]
    result: apb.ProjectionInfo = found
    return result
