"""The traceparent parser, the INCIDENTS_TRACING setting, and the tracer provider's resource."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.app.results import WriteContext
from service.config import ConfigError, Settings
from service.tracing import DEFAULT_SERVICE_NAME, traceparent_trace_id, tracing_for, tracing_with

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "header",
    [
        f"00-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-00",
        f" 00-{TRACE}-{PARENT}-01 ",
        f"01-{TRACE}-{PARENT}-01",
        f"01-{TRACE}-{PARENT}-01-what-a-later-version-adds",
    ],
)
def test_a_valid_traceparent_gives_its_trace_id(header: str) -> None:
    assert traceparent_trace_id(header) == TRACE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"ff-{TRACE}-{PARENT}-01",  # version ff is forbidden
        f"0-{TRACE}-{PARENT}-01",  # version too short
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"01-{TRACE}-{PARENT}-01extra",  # a later version's extra fields follow a dash
        f"00-{TRACE[:-1]}-{PARENT}-01",  # trace id too short
        f"00-{TRACE}0-{PARENT}-01",  # trace id too long
        f"00-{TRACE}-{PARENT[:-1]}-01",  # parent id too short
        f"00-{TRACE}-{PARENT}-1",  # flags too short
        f"00-{TRACE.upper()}-{PARENT}-01",  # hex digits are lowercase
        f"00-{'g' * 32}-{PARENT}-01",  # not hex
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00_{TRACE}_{PARENT}_01",
    ],
)
def test_an_invalid_traceparent_gives_nothing(header: str | None) -> None:
    assert traceparent_trace_id(header) == ""


def test_tracing_is_off_by_default_and_names_its_modes() -> None:
    assert Settings.from_env({}).tracing == "none"
    assert Settings.from_env({"INCIDENTS_TRACING": "OTLP"}).tracing == "otlp"
    assert Settings.from_env({"INCIDENTS_TRACING": "console"}).tracing == "console"
    with pytest.raises(ConfigError, match="INCIDENTS_TRACING must be one of none, otlp, console"):
        Settings.from_env({"INCIDENTS_TRACING": "jaeger"})


def test_no_tracing_builds_no_provider() -> None:
    assert tracing_for("none") is None
    with pytest.raises(ValueError, match="unknown tracing mode"):
        tracing_for("zipkin")


def test_the_service_is_named_incident_registry_unless_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    tracing = tracing_with(InMemorySpanExporter())
    attributes = tracing.provider.resource.attributes
    assert attributes["service.name"] == DEFAULT_SERVICE_NAME
    assert attributes["deployment.environment"] == "test"
    tracing.shutdown()

    monkeypatch.setenv("OTEL_SERVICE_NAME", "registry-eu")
    tracing = tracing_with(InMemorySpanExporter())
    assert tracing.provider.resource.attributes["service.name"] == "registry-eu"
    tracing.shutdown()

    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=registry-us")
    tracing = tracing_with(InMemorySpanExporter())
    assert tracing.provider.resource.attributes["service.name"] == "registry-us"
    tracing.shutdown()


def test_events_record_a_trace_id_only_when_the_request_was_traced() -> None:
    untraced = WriteContext(request_id="r-1", actor="a").metadata()
    assert "trace_id" not in untraced
    traced = WriteContext(request_id="r-1", actor="a", trace_id=TRACE).metadata()
    assert traced == {**untraced, "trace_id": TRACE}
