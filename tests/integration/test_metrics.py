"""Prometheus metrics of a real server, scraped over HTTP after known calls."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    incident_service_pb2_grpc,
    projection_admin_service_pb2,
    projection_admin_service_pb2_grpc,
)
from prometheus_client.parser import text_string_to_metric_families

from projections.assembly import build_projections
from projections.store import store_for
from service.app.registry import Registry
from service.app.results import WriteContext
from service.areas import load_catalog
from service.config import Settings
from service.metrics import start_worker_metrics
from service.store.base import EventStoreBackend
from service.store.sqlite import SQLiteEventStore
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.harness import ServerHarness
from tests.support.log_helpers import wait_for
from tests.unit.app_driver import App

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

INCIDENTS = "/incidents.v1.IncidentService"
EVENT_LOG = "/incidents.v1.EventLogService"
ADMIN = "/incidents.v1.ProjectionAdminService"


def scrape(url: str) -> Samples:
    """GET the metrics page; every sample by name and labels."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when there is no such sample."""
    return samples.get((name, frozenset(labels.items())))


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of one name, by labels."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def requests(samples: Samples, method: str, code: str) -> float | None:
    return value(samples, "incidents_grpc_requests_total", method=method, code=code)


@pytest.fixture
def metered(
    tmp_path: Path, backend_factory: Callable[[], EventStoreBackend]
) -> Iterator[ServerHarness]:
    """A server serving metrics on a free port."""
    harness = ServerHarness(
        tmp_path / "registry.sqlite", backend_factory=backend_factory, metrics=True
    ).start()
    yield harness
    harness.stop()


@pytest.fixture
def stubs(metered: ServerHarness) -> Iterator[grpc.Channel]:
    with metered.channel() as channel:
        yield channel


def _fails(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code: grpc.StatusCode = caught.value.code()
    return code


def test_calls_are_counted_by_method_and_code_with_their_durations(
    metered: ServerHarness, stubs: grpc.Channel
) -> None:
    incidents = incident_service_pb2_grpc.IncidentServiceStub(stubs)
    log = event_log_service_pb2_grpc.EventLogServiceStub(stubs)
    report = b.shooting(request_id="metrics-1")

    written = incidents.ReportShooting(report, metadata=ACTOR_METADATA)
    replayed = incidents.ReportShooting(report, metadata=ACTOR_METADATA)
    assert (written.result.replayed, replayed.result.replayed) == (False, True)
    invalid = b.shooting(municipality_code="99999")
    assert _fails(lambda: incidents.ReportShooting(invalid)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = b.get_incident("00000000-0000-4000-8000-000000000000")
    assert _fails(lambda: incidents.GetIncident(missing)) == grpc.StatusCode.NOT_FOUND
    stale = b.casualties(written.result.aggregate_id, expected_version=5)
    assert _fails(lambda: incidents.ReviseCasualties(stale)) == grpc.StatusCode.ABORTED
    exported = list(log.ExportEvents(event_log_service_pb2.ExportEventsRequest()))
    assert exported[-1].finished.exported == 1
    reflection: Any = reflection_pb2_grpc.ServerReflectionStub(stubs)  # untyped module
    listing = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = reflection.ServerReflectionInfo(iter([listing]))
    assert answer.list_services_response.service
    health: Any = health_pb2_grpc.HealthStub(stubs)  # its stub declares no methods
    assert (
        health.Check(health_pb2.HealthCheckRequest()).status
        == health_pb2.HealthCheckResponse.SERVING
    )

    samples = scrape(metered.metrics_url)

    counted = named(samples, "incidents_grpc_requests_total")
    assert counted == {
        frozenset({("method", f"{INCIDENTS}/ReportShooting"), ("code", "OK")}): 2,
        frozenset({("method", f"{INCIDENTS}/ReportShooting"), ("code", "INVALID_ARGUMENT")}): 1,
        frozenset({("method", f"{INCIDENTS}/GetIncident"), ("code", "NOT_FOUND")}): 1,
        frozenset({("method", f"{INCIDENTS}/ReviseCasualties"), ("code", "ABORTED")}): 1,
        frozenset({("method", f"{EVENT_LOG}/ExportEvents"), ("code", "OK")}): 1,
    }  # Health and reflection calls are not counted.
    duration = "incidents_grpc_request_duration_seconds"
    reports = {"method": f"{INCIDENTS}/ReportShooting"}
    assert value(samples, f"{duration}_count", **reports) == 3
    assert value(samples, f"{duration}_bucket", **reports, le="+Inf") == 3
    assert 0 < (value(samples, f"{duration}_sum", **reports) or 0) < 30
    assert value(samples, f"{duration}_count", method=f"{EVENT_LOG}/ExportEvents") == 1
    assert value(samples, "incidents_grpc_requests_in_flight", **reports) == 0

    # One command wrote, one was replayed, one lost to a version conflict.
    assert named(samples, "incidents_events_appended_total") == {
        frozenset({("type", "ShootingReported")}): 1
    }
    assert value(samples, "incidents_idempotent_replays_total") == 1
    assert value(samples, "incidents_version_conflicts_total") == 1
    assert value(samples, "incidents_subscriptions_active") == 0
    assert value(samples, "process_cpu_seconds_total") is not None
    # SQLite has no connection pool, neither for the log nor for the read models.
    assert not named(samples, "incidents_store_pool_connections_in_use")


def test_a_subscription_is_live_until_cancelled_then_counted_cancelled(
    metered: ServerHarness, stubs: grpc.Channel
) -> None:
    log = event_log_service_pb2_grpc.EventLogServiceStub(stubs)
    method = f"{EVENT_LOG}/Subscribe"
    stream = log.Subscribe(event_log_service_pb2.SubscribeRequest(from_start=True))
    assert next(stream).WhichOneof("message") == "caught_up"

    live = scrape(metered.metrics_url)
    assert value(live, "incidents_subscriptions_active") == 1
    assert value(live, "incidents_grpc_requests_in_flight", method=method) == 1
    assert requests(live, method, "CANCELLED") is None

    stream.cancel()
    assert wait_for(lambda: requests(scrape(metered.metrics_url), method, "CANCELLED") == 1)
    ended = scrape(metered.metrics_url)
    assert value(ended, "incidents_subscriptions_active") == 0
    assert value(ended, "incidents_grpc_requests_in_flight", method=method) == 0
    assert value(ended, "incidents_grpc_request_duration_seconds_count", method=method) == 1
    assert requests(ended, method, "OK") is None


def test_projection_gauges_show_each_projection_position_lag_and_state(
    metered: ServerHarness, stubs: grpc.Channel
) -> None:
    incidents = incident_service_pb2_grpc.IncidentServiceStub(stubs)
    admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(stubs)
    for _ in range(3):
        incidents.ReportShooting(b.shooting(), metadata=ACTOR_METADATA)
    names = sorted(metered.projections.runners)
    assert len(names) >= 2

    def caught_up() -> bool:
        lags = named(scrape(metered.metrics_url), "incidents_projection_lag_events")
        return len(lags) == len(names) and set(lags.values()) == {0}

    assert wait_for(caught_up, timeout=10)
    samples = scrape(metered.metrics_url)
    assert {
        dict(labels)["projection"]: v
        for labels, v in named(samples, "incidents_projection_position").items()
    } == dict.fromkeys(names, 3)
    assert set(named(samples, "incidents_projection_lag_seconds").values()) == {0}
    assert _states(samples) == dict.fromkeys(names, "running")

    paused = names[0]
    admin.PauseProjection(projection_admin_service_pb2.PauseProjectionRequest(name=paused))
    samples = scrape(metered.metrics_url)
    assert _states(samples) == {name: "paused" if name == paused else "running" for name in names}
    state = "incidents_projection_state"
    assert value(samples, state, projection=paused, state="running") == 0
    assert value(samples, state, projection=paused, state="faulted") == 0
    assert requests(samples, f"{ADMIN}/PauseProjection", "OK") == 1


def _states(samples: Samples) -> dict[str, str]:
    """The state each projection is in (the label whose gauge is 1); checks the others are 0."""
    found: dict[str, str] = {}
    by_projection: dict[str, list[float]] = {}
    for labels, v in named(samples, "incidents_projection_state").items():
        name, state = dict(labels)["projection"], dict(labels)["state"]
        by_projection.setdefault(name, []).append(v)
        if v == 1:
            found[name] = state
    assert all(sorted(values) == [0, 0, 1] for values in by_projection.values()), by_projection
    return found


@pytest.mark.parametrize("backend_factory", ["postgres"], indirect=True)
def test_the_postgresql_pools_are_reported(metered: ServerHarness, stubs: grpc.Channel) -> None:
    incidents = incident_service_pb2_grpc.IncidentServiceStub(stubs)
    incidents.ReportShooting(b.shooting(), metadata=ACTOR_METADATA)
    samples = scrape(metered.metrics_url)
    # The test schemas' pools: 3 connections kept, 4 more allowed under load.
    for name in ("events", "views"):
        pool = {"pool": name}
        assert value(samples, "incidents_store_pool_max_connections", **pool) == 7, name
        size = value(samples, "incidents_store_pool_connections", **pool)
        in_use = value(samples, "incidents_store_pool_connections_in_use", **pool)
        assert size is not None, name
        assert in_use is not None, name
        assert 0 <= in_use <= size <= 7, name
        waiting = value(samples, "incidents_store_pool_requests_waiting", **pool)
        assert waiting is not None, name
        assert 0 <= waiting <= 10, name
    # The projections starting up may be waiting for the views pool to grow; nothing waits on
    # the events pool once the command was answered.
    assert value(samples, "incidents_store_pool_requests_waiting", pool="events") == 0
    # The LISTEN connection is always lent out.
    assert (value(samples, "incidents_store_pool_connections_in_use", pool="events") or 0) >= 1
    # The view store holds at least its one kept connection.
    assert (value(samples, "incidents_store_pool_connections", pool="views") or 0) >= 1
    assert named(samples, "incidents_store_pool_connections_in_use").keys() == {
        frozenset({("pool", "events")}),
        frozenset({("pool", "views")}),
    }


def test_servers_in_one_process_keep_their_own_counts(
    tmp_path: Path, metered: ServerHarness, stubs: grpc.Channel
) -> None:
    other = ServerHarness(tmp_path / "other.sqlite", metrics=True).start()
    try:
        incidents = incident_service_pb2_grpc.IncidentServiceStub(stubs)
        incidents.ReportShooting(b.shooting(), metadata=ACTOR_METADATA)
        method = f"{INCIDENTS}/ReportShooting"
        assert requests(scrape(metered.metrics_url), method, "OK") == 1
        assert requests(scrape(other.metrics_url), method, "OK") is None
        url = other.metrics_url
    finally:
        other.stop()
    with pytest.raises(urllib.error.URLError):
        scrape(url)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_worker_serves_projection_and_write_metrics_until_stopped(tmp_path: Path) -> None:
    backend = SQLiteEventStore(tmp_path / "worker.sqlite")
    registry = Registry(backend, load_catalog("brussels"), read_threads=2)
    projections = build_projections(registry, store_for(backend, tmp_path / "views.sqlite"))
    settings = Settings(metrics_host="127.0.0.1", metrics_port=_free_port())
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"

    async def work() -> tuple[Samples, object]:
        assert start_worker_metrics(Settings(), registry, projections) is None  # port 0: off
        metrics = start_worker_metrics(settings, registry, projections)
        assert metrics is not None
        assert metrics.port == settings.metrics_port
        projections.start()
        try:
            context = WriteContext(request_id="worker-1", actor="test")
            for _ in range(2):  # written, then replayed
                await registry.incidents.report_shooting(App.shooting(), context)
            for runner in projections.runners.values():
                assert await runner.wait_for(1, timeout=10)
            # The scrape waits for the event loop: it must not run on it.
            samples = await asyncio.to_thread(scrape, url)
        finally:
            await asyncio.to_thread(metrics.stop)
            await projections.stop()
        return samples, registry.writer.observer

    try:
        samples, observer = asyncio.run(work())
    finally:
        registry.close()

    positions = named(samples, "incidents_projection_position")
    assert {dict(labels)["projection"] for labels in positions} == set(projections.runners)
    assert set(positions.values()) == {1}
    assert set(named(samples, "incidents_projection_lag_events").values()) == {0}
    assert _states(samples) == dict.fromkeys(projections.runners, "running")
    assert value(samples, "incidents_events_appended_total", type="ShootingReported") == 1
    assert value(samples, "incidents_idempotent_replays_total") == 1
    # A worker serves no RPCs and holds no subscriptions.
    assert not named(samples, "incidents_grpc_requests_total")
    assert value(samples, "incidents_subscriptions_active") is None
    # Stopped: the port is closed and the writer is no longer observed.
    assert observer is None
    with pytest.raises(urllib.error.URLError):
        scrape(url)
