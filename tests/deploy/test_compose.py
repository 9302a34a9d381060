"""deploy/compose.yaml against the Compose specification's schema, and what the stack needs.

check-jsonschema validates it with the Compose specification's JSON schema that it vendors;
the rest checks what a schema cannot: start order, one image for all, settings, scraping.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.config import Settings
from tests.deploy.files import (
    COMPOSE,
    DEPLOY,
    PROMETHEUS,
    ROOT,
    interpolate,
    run_tool,
    tool,
    yaml_document,
)

SERVERS = ("server-1", "server-2")
REGISTRY_SERVICES = ("migrate", *SERVERS, "worker")
MONITORING = ("prometheus", "grafana")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml_document(COMPOSE)
    return document


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def environment(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment with Compose's interpolation done (`env` as the shell's)."""
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "environment is written as a mapping"
    return {key: interpolate(str(value), env or {}) for key, value in raw.items()}


def test_compose_file_is_valid_against_the_compose_specification():
    result = run_tool(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_services(services):
    assert set(services) == {"postgres", *REGISTRY_SERVICES, *MONITORING}
    assert services["postgres"]["image"] == "postgres:16"
    for name in MONITORING:
        assert services[name]["profiles"] == ["monitoring"], name
    for name in set(services) - set(MONITORING):
        assert "profiles" not in services[name], name


def test_postgres_is_checked_with_pg_isready_and_keeps_its_data_in_a_named_volume(
    compose, services
):
    postgres = services["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    (volume,) = postgres["volumes"]
    name, _, path = volume.partition(":")
    assert name in compose["volumes"]
    assert path == "/var/lib/postgresql/data"


def test_start_order(services):
    migrate = services["migrate"]
    assert migrate["command"] == ["incident-registry-server", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in (*SERVERS, "worker"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert services["worker"]["command"] == ["incident-registry-worker"]
    for name in SERVERS:
        assert "command" not in services[name], "servers run the image's CMD"


def test_one_image_built_from_the_repository_for_every_registry_service(services):
    images = {services[name]["image"] for name in REGISTRY_SERVICES}
    assert len(images) == 1
    for name in REGISTRY_SERVICES:
        build = services[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).is_file()


def test_servers_publish_distinct_host_ports_on_loopback(services):
    published = []
    for name in SERVERS:
        (mapping,) = services[name]["ports"]
        host, host_port, container_port = mapping.split(":")
        assert host == "127.0.0.1"
        assert container_port == "50051"
        published.append(host_port)
    assert len(set(published)) == len(SERVERS)


def test_the_registry_settings(services):
    for name in REGISTRY_SERVICES:
        env = environment(services[name])
        assert env["INCIDENTS_STORE"] == "postgres", name
        assert env["INCIDENTS_POSTGRES_HOST"] == "postgres", name
        assert env["INCIDENTS_MIGRATE_ON_START"] == "false", name
        assert env["INCIDENTS_PROJECTIONS_IN_PROCESS"] == "false", name
        assert env["INCIDENTS_METRICS_HOST"] == "0.0.0.0", name
        assert env["INCIDENTS_METRICS_PORT"] == "9464", name
        settings = Settings.from_env(env)
        assert settings.postgres.dbname == services["postgres"]["environment"]["POSTGRES_DB"]
        assert settings.postgres.user == services["postgres"]["environment"]["POSTGRES_USER"]
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s")
        assert float(grace[:-1]) > settings.shutdown_grace_seconds, name


def test_the_password_is_one_variable_with_a_development_default(services):
    postgres = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    for name in REGISTRY_SERVICES:
        assert services[name]["environment"]["INCIDENTS_POSTGRES_PASSWORD"] == postgres
    default = environment(services["postgres"])["POSTGRES_PASSWORD"]
    assert "development" in default
    assert "change" in default
    chosen = {"INCIDENTS_POSTGRES_PASSWORD": "s3cret-from-env-file"}
    for name in REGISTRY_SERVICES:
        settings = Settings.from_env(environment(services[name], chosen))
        assert settings.postgres.password == "s3cret-from-env-file"
    assert environment(services["postgres"], chosen)["POSTGRES_PASSWORD"] == (
        "s3cret-from-env-file"
    )


def test_health_checks(services):
    # Servers keep the image's HEALTHCHECK; the worker has no gRPC and migrate exits.
    for name in SERVERS:
        assert "healthcheck" not in services[name], name
    assert services["migrate"]["healthcheck"] == {"disable": True}
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "127.0.0.1:9464/metrics" in worker_check


def test_prometheus_scrapes_every_server_and_the_worker(services):
    prometheus = services["prometheus"]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    assert (DEPLOY / mounted["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS
    config = yaml_document(PROMETHEUS)
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = {
        f"{name}:{environment(services[name])['INCIDENTS_METRICS_PORT']}"
        for name in (*SERVERS, "worker")
    }
    assert targets == expected
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
