"""deploy/grafana: the dashboard, its provisioning, and the Grafana service of compose.yaml.

Every metric name in the dashboard's PromQL must be one the code exposes: the names are taken
from the metric families the server and the worker register (collectors included, fed with
stand-ins), so renaming a metric in the code fails here until the dashboard follows.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from projections.runtime import Projections, ProjectionStatus
from service.app.event_log import EventLog
from service.metrics import ServerMetrics
from service.metrics_collectors import (
    PROJECTION_STATES,
    PoolCollector,
    ProjectionCollector,
    SubscriptionCollector,
)
from tests.deploy.files import COMPOSE, DEPLOY, interpolate, yaml_document

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "incident-registry.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml"

STANDARD_PROCESS_METRICS = frozenset(
    {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    }
)
"""What the Prometheus client's process collector serves on Linux (where the images run)."""

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}

# PromQL words that are not metric names, and Grafana's interval variables.
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"bool", "offset", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*(?![\w(])(?!\s*\()")


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in PROMQL_WORDS}


class _StubProjections:
    """Stands in for Projections: one running projection."""

    async def statuses(self) -> list[ProjectionStatus]:
        return [
            ProjectionStatus(
                name="incident_summary",
                description="stand-in",
                status=PROJECTION_STATES[0],
                error="",
                position=3,
                start_position=0,
                head=5,
                lag_events=2,
                lag_seconds=0.5,
                applied_here=True,
                updated_at=datetime.now(UTC),
            )
        ]


@pytest.fixture(scope="module")
def projection_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread, as the projections' loop is to a scrape."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """The series names a scrape of `registry` can serve, whether or not they have samples."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


@pytest.fixture(scope="module")
def exposed(projection_loop: asyncio.AbstractEventLoop) -> set[str]:
    """Every metric name a server process serves (a worker serves a subset of them)."""
    metrics = ServerMetrics()
    stats = {"pool_size": 4, "pool_available": 1, "pool_max": 10, "requests_waiting": 0}
    metrics.registry.register(PoolCollector({"events": lambda: stats, "views": lambda: stats}))
    projections = cast("Projections", _StubProjections())
    metrics.registry.register(ProjectionCollector(projections, projection_loop))
    event_log = cast("EventLog", SimpleNamespace(subscribers=2))
    metrics.registry.register(SubscriptionCollector(event_log))
    return exposed_names(metrics.registry) | STANDARD_PROCESS_METRICS


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels other than rows, those inside collapsed rows included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    exprs = [str(target["expr"]) for panel in panels(dashboard) for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = str(query["query"] if isinstance(query, dict) else query)
        match = re.fullmatch(r"label_values\((?P<selector>.+),\s*\w+\)", text)
        assert match, f"variable {variable['name']}: {text!r}"
        exprs.append(match.group("selector"))
    return exprs


def test_the_metric_names_are_found_in_expressions() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, method) (rate(incidents_grpc_request_duration_"
        'seconds_bucket{method=~".*/Report.*", job=~"$job"}[$__rate_interval])))'
        " / on (method) group_left sum without (code) (incidents_grpc_requests_total offset 5m)"
    )
    assert metric_names_in(expr) == {
        "incidents_grpc_request_duration_seconds_bucket",
        "incidents_grpc_requests_total",
    }


def test_the_exposed_names_are_the_codes(exposed: set[str]) -> None:
    assert {
        "incidents_grpc_requests_total",
        "incidents_grpc_request_duration_seconds_bucket",
        "incidents_events_appended_total",
        "incidents_store_pool_requests_waiting",
        "incidents_projection_state",
        "incidents_subscriptions_active",
        "process_cpu_seconds_total",
    } <= exposed
    # A name the code does not serve is not taken for one, nor a family name without _total.
    assert "incidents_grpc_requests" not in exposed
    assert not metric_names_in("rate(incidents_renamed_total[5m])") <= exposed


def test_the_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance"} <= set(variables)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_has_a_title_and_a_target_on_the_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    found = panels(dashboard)
    assert len(found) >= 14
    for panel in found:
        assert panel.get("title"), panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_expression_filters_by_job_and_instance(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        for target in panel["targets"]:
            for selector in _MATCHERS.findall(target["expr"]):
                assert 'job=~"$job"' in selector, (panel["title"], selector)
                assert 'instance=~"$instance"' in selector, (panel["title"], selector)


def test_every_metric_of_the_dashboard_is_exposed_by_the_code(
    dashboard: dict[str, Any], exposed: set[str]
) -> None:
    used: set[str] = set()
    for expr in expressions(dashboard):
        names = metric_names_in(expr)
        assert names, f"no metric found in {expr!r}"
        used |= names
    assert used - exposed == set()
    # What the dashboard is for: each of these families has a panel.
    for name in (
        "incidents_grpc_requests_total",
        "incidents_grpc_request_duration_seconds_bucket",
        "incidents_grpc_requests_in_flight",
        "incidents_events_appended_total",
        "incidents_idempotent_replays_total",
        "incidents_version_conflicts_total",
        "incidents_limit_refusals_total",
        "incidents_subscriptions_active",
        "incidents_store_pool_connections_in_use",
        "incidents_store_pool_connections",
        "incidents_store_pool_max_connections",
        "incidents_store_pool_requests_waiting",
        "incidents_projection_lag_events",
        "incidents_projection_lag_seconds",
        "incidents_projection_state",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert name in used, name


def test_the_latency_panel_takes_quantiles_of_the_histogram(dashboard: dict[str, Any]) -> None:
    quantiles = {
        match
        for expr in expressions(dashboard)
        if "incidents_grpc_request_duration_seconds_bucket" in expr
        for match in re.findall(r"histogram_quantile\((0\.\d+),\s*sum by \(le, method\)", expr)
    }
    assert quantiles == {"0.5", "0.99"}


def test_the_faulted_state_is_highlighted(dashboard: dict[str, Any]) -> None:
    faulted = [
        panel
        for panel in panels(dashboard)
        if any('state="faulted"' in target["expr"] for target in panel["targets"])
    ]
    assert faulted
    for panel in faulted:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0]["color"] == "green"
        assert steps[-1]["color"] == "red"
        assert steps[-1]["value"] >= 1


# Provisioning and the compose service.


@pytest.fixture(scope="module")
def grafana_service() -> dict[str, Any]:
    compose: dict[str, Any] = yaml_document(COMPOSE)
    service: dict[str, Any] = compose["services"]["grafana"]
    return service


def mounts(service: dict[str, Any]) -> dict[PurePosixPath, str]:
    """Container path -> host source (relative to deploy/) of a service's volumes."""
    found: dict[PurePosixPath, str] = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        found[PurePosixPath(target)] = source
    return found


def host_path(source: str) -> Path:
    """A volume source of compose.yaml as an absolute path."""
    return (DEPLOY / source).resolve()


def test_the_grafana_service(grafana_service: dict[str, Any]) -> None:
    image, _, tag = grafana_service["image"].partition(":")
    assert image == "grafana/grafana-oss"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), "pinned to a release"
    assert grafana_service["profiles"] == ["monitoring"]
    assert grafana_service["ports"] == ["127.0.0.1:3000:3000"]
    assert "prometheus" in grafana_service["depends_on"]


def test_grafana_mounts_the_files_that_exist(grafana_service: dict[str, Any]) -> None:
    bound = {
        target: source
        for target, source in mounts(grafana_service).items()
        if source.startswith(".")
    }
    assert bound
    for target, source in bound.items():
        assert host_path(source).exists(), (target, source)
    assert host_path(bound[PurePosixPath("/etc/grafana/provisioning/datasources")]) == (
        DATASOURCES.parent
    )
    assert host_path(bound[PurePosixPath("/etc/grafana/provisioning/dashboards")]) == (
        DASHBOARD_PROVIDERS.parent
    )
    dashboards = [target for target, source in bound.items() if host_path(source) == DASHBOARD]
    assert len(dashboards) == 1


def test_the_admin_password_has_a_development_default_and_comes_from_the_environment(
    grafana_service: dict[str, Any],
) -> None:
    raw = str(grafana_service["environment"]["GF_SECURITY_ADMIN_PASSWORD"])
    default = interpolate(raw, {})
    assert "development" in default
    assert "change" in default
    chosen = interpolate(raw, {"GRAFANA_ADMIN_PASSWORD": "s3cret"})
    assert chosen == "s3cret"
    assert grafana_service["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_the_datasource_is_the_prometheus_service(dashboard: dict[str, Any]) -> None:
    compose: dict[str, Any] = yaml_document(COMPOSE)
    config = yaml_document(DATASOURCES)
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    assert datasource["type"] == "prometheus"
    host_port = datasource["url"].removeprefix("http://")
    host, _, port = host_port.partition(":")
    assert host in compose["services"]
    published = {mapping.rsplit(":", 1)[1] for mapping in compose["services"][host]["ports"]}
    assert port in published
    (variable,) = (v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == datasource["uid"]


def test_the_dashboard_provider_points_at_the_mounted_dashboard(
    grafana_service: dict[str, Any],
) -> None:
    config = yaml_document(DASHBOARD_PROVIDERS)
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    folder = PurePosixPath(provider["options"]["path"])
    mounted = mounts(grafana_service)
    in_folder = [
        target
        for target, source in mounted.items()
        if target.parent == folder and host_path(source) == DASHBOARD
    ]
    assert in_folder, f"{DASHBOARD.name} is not mounted in {folder}"
