"""Tracing of gRPC calls and the ids in their log lines, on a real server and channel.

With tracing on, spans go to an in-memory exporter through the same batching provider the
server builds for INCIDENTS_TRACING; with it off, the server is the default one.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import pytest
import structlog
from incident_registry_client.proto.incidents.v1 import incident_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2_grpc,
    statistics_service_pb2,
    statistics_service_pb2_grpc,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service.api import handlers
from service.api.server import start_server
from service.tracing import REQUEST_ID_ATTRIBUTE, Tracing, tracing_with
from tests.support import builders as b
from tests.support import harness as harness_module
from tests.support.harness import ServerHarness

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
REPORT = "incidents.v1.IncidentService/ReportShooting"


class LogRecorder:
    """Stands in for the wrapper's logger: each line as rendered, with its bound context."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _keep(self, event: str, fields: dict[str, Any]) -> None:
        line = {**structlog.contextvars.get_contextvars(), "event": event, **fields}
        with self._lock:
            self.lines.append(line)

    def info(self, event: str, **fields: Any) -> None:
        self._keep(event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._keep(event, fields)

    def completed(self, rpc: str) -> list[dict[str, Any]]:
        """The access lines of `rpc` ("/package.Service/Method"), once there are any (5 s at
        most: the line is written after the status was sent)."""
        deadline = time.monotonic() + 5
        while True:
            with self._lock:
                lines = [
                    line
                    for line in self.lines
                    if line["event"] == "rpc_completed" and line.get("rpc") == rpc
                ]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    recorder = LogRecorder()
    monkeypatch.setattr(handlers, "log", recorder)
    return recorder


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    return tracing_with(exporter)


@pytest.fixture
def traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracing: Tracing
) -> Iterator[ServerHarness]:
    """A registry server whose calls are traced by `tracing`."""
    monkeypatch.setattr(
        harness_module, "start_server", functools.partial(start_server, tracing=tracing)
    )
    server = ServerHarness(tmp_path / "registry.sqlite").start()
    yield server
    server.stop()


@pytest.fixture
def traced_incidents(
    traced: ServerHarness,
) -> Iterator[incident_service_pb2_grpc.IncidentServiceStub]:
    with traced.channel() as channel:
        yield incident_service_pb2_grpc.IncidentServiceStub(channel)


def finished(tracing: Tracing, exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """The spans named `name`, once there are any (5 s at most; the batch is flushed).

    A call's span ends after its status was sent: the client may see it first.
    """
    deadline = time.monotonic() + 5
    while True:
        assert tracing.provider.force_flush(timeout_millis=5000)
        spans = [span for span in exporter.get_finished_spans() if span.name == name]
        if spans or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


def stored_metadata(server: ServerHarness, stream_id: str) -> dict[str, str]:
    """The metadata dict of the first event of a stream, as the store holds it."""
    assert server.registry is not None
    window = asyncio.run(server.registry.event_log.read_stream(UUID(stream_id), 0, False, 1))
    return dict(window.events[0].event.metadata)  # type: ignore[attr-defined]


def test_a_write_continues_the_callers_trace_into_its_span_events_and_logs(
    traced, traced_incidents, tracing, exporter, logged
):
    request = b.shooting()
    reply = traced_incidents.ReportShooting(request, metadata=(("traceparent", TRACEPARENT),))

    (span,) = finished(tracing, exporter, REPORT)
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == CALLER_SPAN
    assert span.parent.is_remote
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "incidents.v1.IncidentService",
        "rpc.method": "ReportShooting",
        "rpc.grpc.status_code": 0,
        REQUEST_ID_ATTRIBUTE: request.request_id,
    }
    assert span.status.status_code is StatusCode.UNSET

    history = traced_incidents.GetIncident(
        pb.GetIncidentRequest(incident_id=reply.result.aggregate_id)
    ).history
    assert history[0].metadata.trace_id == CALLER_TRACE
    assert stored_metadata(traced, reply.result.aggregate_id)["trace_id"] == CALLER_TRACE

    (line,) = logged.completed("/" + REPORT)
    assert line["code"] == "OK"
    assert line["trace_id"] == CALLER_TRACE
    assert line["span_id"] == format(span.context.span_id, "016x")
    assert line["request_id"] == request.request_id
    # No x-correlation-id header: the events are correlated by the request id, and so is the log.
    assert line["correlation_id"] == request.request_id == history[0].metadata.correlation_id


def test_a_write_without_traceparent_starts_a_trace_of_its_own(
    traced, traced_incidents, tracing, exporter, logged
):
    reply = traced_incidents.ReportShooting(
        b.shooting(), metadata=(("x-correlation-id", "case-42"), ("traceparent", "00-bogus"))
    )

    (span,) = finished(tracing, exporter, REPORT)
    assert span.parent is None
    trace_id = format(span.context.trace_id, "032x")
    assert len(trace_id) == 32
    assert trace_id != CALLER_TRACE
    history = traced_incidents.GetIncident(
        pb.GetIncidentRequest(incident_id=reply.result.aggregate_id)
    ).history
    assert history[0].metadata.trace_id == trace_id
    (line,) = logged.completed("/" + REPORT)
    assert line["trace_id"] == trace_id
    assert line["correlation_id"] == "case-42" == history[0].metadata.correlation_id


def test_a_refused_call_has_an_error_span(traced, traced_incidents, tracing, exporter, logged):
    with pytest.raises(grpc.RpcError) as refused:
        traced_incidents.ReportShooting(
            b.shooting(request_id=""), metadata=(("traceparent", TRACEPARENT),)
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    (span,) = finished(tracing, exporter, REPORT)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "INVALID_ARGUMENT"
    assert (span.attributes or {})[
        "rpc.grpc.status_code"
    ] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    (line,) = logged.completed("/" + REPORT)
    assert line["code"] == "INVALID_ARGUMENT"
    assert line["trace_id"] == CALLER_TRACE


def test_reads_are_traced_too(traced, traced_incidents, tracing, exporter):
    with pytest.raises(grpc.RpcError) as missing:
        traced_incidents.GetIncident(
            pb.GetIncidentRequest(incident_id="6f1c1e5e-4b7a-4e0e-9d55-0d7c2b7f4a11"),
            metadata=(("traceparent", TRACEPARENT),),
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    (span,) = finished(tracing, exporter, "incidents.v1.IncidentService/GetIncident")
    assert span.status.status_code is StatusCode.ERROR
    assert REQUEST_ID_ATTRIBUTE not in (span.attributes or {})


def test_read_model_queries_are_traced_too(traced, tracing, exporter):
    with traced.channel() as channel:
        statistics = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
        statistics.GetAreaStatistics(
            statistics_service_pb2.GetAreaStatisticsRequest(
                area_kind=statistics_service_pb2.AREA_KIND_MUNICIPALITY,
                period_kind=statistics_service_pb2.PERIOD_KIND_MONTH,
            ),
            metadata=(("traceparent", TRACEPARENT),),
        )
    (span,) = finished(tracing, exporter, "incidents.v1.StatisticsService/GetAreaStatistics")
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.UNSET
    assert format(span.context.trace_id, "032x") == CALLER_TRACE


def test_untraced_writes_record_no_trace_id_but_log_the_callers(
    server, incidents, exporter, logged
):
    request = b.shooting()
    reply = incidents.ReportShooting(request, metadata=(("traceparent", TRACEPARENT),))

    history = incidents.GetIncident(
        pb.GetIncidentRequest(incident_id=reply.result.aggregate_id)
    ).history
    assert history[0].metadata.trace_id == ""
    assert "trace_id" not in stored_metadata(server, reply.result.aggregate_id)
    (line,) = logged.completed("/" + REPORT)
    assert line["trace_id"] == CALLER_TRACE
    assert "span_id" not in line  # no span was started
    assert line["request_id"] == request.request_id
    assert line["correlation_id"] == request.request_id
    assert exporter.get_finished_spans() == ()


def test_untraced_calls_ignore_an_invalid_traceparent(server, incidents, logged):
    bad = f"00-{'0' * 32}-{CALLER_SPAN}-01"
    reply = incidents.ReportShooting(
        b.shooting(), metadata=(("traceparent", bad), ("x-correlation-id", "case-7"))
    )
    assert reply.result.aggregate_id
    (line,) = logged.completed("/" + REPORT)
    assert "trace_id" not in line
    assert line["correlation_id"] == "case-7"
