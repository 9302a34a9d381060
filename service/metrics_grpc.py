"""RPC metrics: the families counting and timing the registry's RPCs, by method and code.

They are recorded by the wrapper every RPC is registered with (`service.api.handlers`), not
by a server interceptor: a grpc.aio interceptor runs per call and costs as much CPU again as
a unary RPC itself. A call is counted when it ends, with the status code it ended with, so a
stream is counted once, when it finishes.
"""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)
"""Seconds; sub-millisecond for reads, up to ten minutes for streams."""


class RpcMetrics:
    """The RPC metric families, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "incidents_grpc_requests",
            "RPCs ended, by full method name and status code (streams count when they end).",
            ["method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "incidents_grpc_request_duration_seconds",
            "Time from the start of an RPC's handler to its end, by full method name.",
            ["method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "incidents_grpc_requests_in_flight",
            "RPCs being handled now, by full method name (open streams included).",
            ["method"],
            registry=registry,
        )
        self.limit_refusals = Counter(
            "incidents_limit_refusals",
            "Calls refused by a per-caller limit (service.security.limits), by limit.",
            ["limit"],
            registry=registry,
        )

    def method(self, name: str) -> MethodMetrics:
        """The metrics of one method (full name, "/package.Service/Method"), labels bound once."""
        return MethodMetrics(self, name)


class MethodMetrics:
    """The metric children of one method; records calls from any thread."""

    def __init__(self, families: RpcMetrics, method: str) -> None:
        self._families = families
        self._method = method
        self._duration = families.duration.labels(method)
        self._in_flight = families.in_flight.labels(method)
        self._requests: dict[grpc.StatusCode, Counter] = {}

    def begin(self) -> None:
        """Count a call in flight."""
        self._in_flight.inc()

    def end(self, code: grpc.StatusCode, seconds: float) -> None:
        """Count a call that began, then ended with `code` after `seconds`."""
        self._duration.observe(seconds)
        self._in_flight.dec()
        counter = self._requests.get(code)
        if counter is None:
            counter = self._requests[code] = self._families.requests.labels(self._method, code.name)
        counter.inc()

    def refused(self, limit: str) -> None:
        """Count a call of this method refused by a per-caller `limit` (e.g.
        `calls_per_second`); it is counted by `end` with its status as well."""
        self._families.limit_refusals.labels(limit).inc()
