"""Optional OpenTelemetry tracing of the registry's gRPC calls, and W3C traceparent parsing.

Tracing is off unless INCIDENTS_TRACING says `otlp` or `console`. When on, the server has a
tracer provider of its own (the global one is left alone), whose spans are exported in
batches: over OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT (the standard OTEL_EXPORTER_OTLP_*
variables apply), or as JSON lines on standard error (standard output carries the logs).
The resource is named by OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES, else
"incident-registry".

Server spans are started by `service.api.handlers` for each call (`ServerSpans`), not by a
gRPC interceptor. `traceparent_trace_id` reads the trace id of a caller's traceparent header
without OpenTelemetry, for the logs of a server that does not trace.

The OpenTelemetry SDK is imported only when tracing is turned on.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_SERVICE_NAME = "incident-registry"
"""service.name of the spans unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name one."""

TRACEPARENT_HEADER = "traceparent"
"""The W3C trace context header a caller continues its trace with."""

REQUEST_ID_ATTRIBUTE = "incidents.request_id"
"""The span attribute holding the call's request id (writes only)."""

TRACER_NAME = "service.api"

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent_trace_id(header: str | None) -> str:
    """The trace id (32 lowercase hex digits) of a W3C traceparent header; "" if invalid.

    Version 00 is exactly `00-<trace id>-<parent id>-<flags>`; a later version may append
    fields after a dash; version ff, all-zero ids and anything else are invalid.
    """
    if not header:
        return ""
    found = _TRACEPARENT.fullmatch(header.strip())
    if found is None:
        return ""
    version, trace_id, parent_id, rest = found.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return ""
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return ""
    return trace_id


@dataclass(frozen=True)
class Tracing:
    """The server's tracer provider and the tracer its RPC wrapper starts spans with."""

    provider: TracerProvider
    tracer: trace.Tracer

    def shutdown(self) -> None:
        """Export the spans still queued (within the exporter's timeout), then stop."""
        self.provider.shutdown()


def tracing_for(mode: str) -> Tracing | None:
    """The tracing of INCIDENTS_TRACING `mode`: None for "none", else a batching provider.

    "otlp" exports over OTLP/gRPC as the OTEL_EXPORTER_OTLP_* variables say; "console"
    writes each span as one JSON line on standard error. An unreachable collector never
    fails a call: the exporter logs the failure and the spans are dropped.
    """
    if mode == "none":
        return None
    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        return tracing_with(OTLPSpanExporter())
    if mode == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        return tracing_with(ConsoleSpanExporter(out=sys.stderr, formatter=_one_line))
    msg = f"unknown tracing mode {mode!r}"
    raise ValueError(msg)


def tracing_with(exporter: SpanExporter) -> Tracing:
    """A tracer provider of the registry's resource exporting to `exporter` in batches."""
    from opentelemetry.sdk.resources import (  # noqa: PLC0415
        OTELResourceDetector,
        Resource,
    )
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    # The environment's resource attributes and service name win over the default name.
    resource = Resource.create({"service.name": DEFAULT_SERVICE_NAME}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider=provider, tracer=provider.get_tracer(TRACER_NAME))


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


class ServerSpans:
    """Starts the SERVER span of each call of one RPC, named by its full method name.

    `method` is the gRPC path, "/incidents.v1.IncidentService/ReportShooting"; the span is
    named "incidents.v1.IncidentService/ReportShooting" and carries the rpc.* attributes of
    the OpenTelemetry semantic conventions.
    """

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(self, tracer: trace.Tracer, method: str) -> None:
        self._tracer = tracer
        self._name = method.lstrip("/")
        service, _, name = self._name.rpartition("/")
        self._attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def start(self, headers: Mapping[str, str]) -> CallSpan:
        """Start a call's span, continuing the caller's trace when its headers carry one,
        and make it the current span of the call's context until `CallSpan.end`."""
        parent = _PROPAGATOR.extract(headers)
        span = self._tracer.start_span(
            self._name, context=parent, kind=SpanKind.SERVER, attributes=self._attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return CallSpan(span, token)


class CallSpan:
    """The span of one call, from its start to `end`."""

    __slots__ = ("_span", "_token", "span_id", "trace_id")

    def __init__(self, span: trace.Span, token: Token[Context]) -> None:
        self._span = span
        self._token = token
        ids = span.get_span_context()
        self.trace_id: str = format(ids.trace_id, "032x")
        """The trace id, 32 lowercase hex digits."""
        self.span_id: str = format(ids.span_id, "016x")
        """The span id, 16 lowercase hex digits."""

    def end(self, code: int, code_name: str, request_id: str) -> None:
        """End the span with the call's gRPC status: ERROR unless the code is OK (0)."""
        span = self._span
        span.set_attribute("rpc.grpc.status_code", code)
        if request_id:
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
        if code != 0:
            span.set_status(Status(StatusCode.ERROR, code_name))
        span.end()
        otel_context.detach(self._token)
