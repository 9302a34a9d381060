"""Prometheus metrics of a server process or a projection worker, served over HTTP.

Each process object owns its own CollectorRegistry (never the library's global one), so
several servers in one process, as in the tests, keep separate counts. GET /metrics on
INCIDENTS_METRICS_HOST:INCIDENTS_METRICS_PORT (+ the process index for the server's
processes) answers with the text exposition format; the port 0 turns metrics off.
"""

from __future__ import annotations

import asyncio
import threading
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    start_http_server,
)

from projections.runtime import Projections
from service.app.registry import Registry
from service.app.writer import GroupCommitWriter
from service.config import Settings
from service.metrics_collectors import (
    PoolCollector,
    ProjectionCollector,
    SubscriptionCollector,
    WriteCounters,
    store_pools,
)
from service.metrics_grpc import RpcMetrics

log = structlog.get_logger(__name__)

MAX_PORT = 65535


class MetricsEndpoint:
    """An HTTP server on its own thread answering GET /metrics for one registry."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen by the system when 0 was asked for)."""
        assert self._server is not None, "the metrics endpoint was not started"
        return self._server.server_port

    def start(self) -> int:
        """Listen and serve; return the port. OSError when the port cannot be bound."""
        try:
            self._server, self._thread = start_http_server(
                self.requested_port, self.host, registry=self.registry
            )
        except OSError as err:
            where = f"{self.host}:{self.requested_port}"
            raise OSError(err.errno, f"cannot serve metrics on {where}: {err.strerror}") from err
        return self.port

    def stop(self) -> None:
        """Stop serving and close the socket (blocks for up to half a second)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class ProcessMetrics:
    """The metrics of one process: its writes, store pool and projections, and the process.

    Build it, `observe` the registry (on its event loop), then `start` serving; `stop` at
    shutdown. A projection worker uses this class as is.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            # Their values are global to the process; only the registration is ours.
            self.registry.register(collector)
        self.writes = WriteCounters(self.registry)
        self.endpoint = MetricsEndpoint(self.registry, host, port)
        self._writer: GroupCommitWriter | None = None

    def observe(self, registry: Registry, projections: Projections | None = None) -> None:
        """Count `registry`'s writes; collect its store pools and `projections` when scraped.

        Call it once, in the event loop that runs `projections`.
        """
        self._writer = registry.writer
        registry.writer.observer = self.writes
        pools = store_pools(registry.backend, None if projections is None else projections.store)
        if pools:
            self.registry.register(PoolCollector(pools))
        if projections is not None:
            loop = asyncio.get_running_loop()
            self.registry.register(ProjectionCollector(projections, loop))

    @property
    def port(self) -> int:
        """The port the metrics are served on."""
        return self.endpoint.port

    def start(self) -> int:
        """Serve GET /metrics; return the port. OSError when the port cannot be bound."""
        port = self.endpoint.start()
        log.info("metrics_serving", host=self.endpoint.host, port=port)
        return port

    def stop(self) -> None:
        """Stop serving and stop counting the observed registry's writes."""
        self.endpoint.stop()
        if self._writer is not None and self._writer.observer is self.writes:
            self._writer.observer = None
        self._writer = None


class ServerMetrics(ProcessMetrics):
    """The metrics of a server process: the process's, plus RPCs and subscriptions.

    `start_server(..., metrics=...)` has every registry RPC recorded in `rpcs` (health and
    reflection calls are not), observes the registry and starts and stops the HTTP endpoint
    with the server.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.rpcs = RpcMetrics(self.registry)

    def observe(self, registry: Registry, projections: Projections | None = None) -> None:
        """Also count the registry's live subscriptions."""
        super().observe(registry, projections)
        self.registry.register(SubscriptionCollector(registry.event_log))


def metrics_port(settings: Settings) -> int:
    """The port this process serves metrics on: INCIDENTS_METRICS_PORT + its process index.

    0 when metrics are off; OSError when the sum is past the last port.
    """
    if settings.metrics_port == 0:
        return 0
    port = settings.metrics_port + settings.process_index
    if port > MAX_PORT:
        msg = f"metrics port {port} (INCIDENTS_METRICS_PORT + process index) is past {MAX_PORT}"
        raise OSError(msg)
    return port


def server_metrics(settings: Settings) -> ServerMetrics | None:
    """The metrics of a server process as configured; None when INCIDENTS_METRICS_PORT is 0.

    Pass the result to `start_server(..., metrics=...)`, which serves them while it runs.
    """
    port = metrics_port(settings)
    if port == 0:
        return None
    return ServerMetrics(host=settings.metrics_host, port=port)


def start_worker_metrics(
    settings: Settings, registry: Registry, projections: Projections
) -> ProcessMetrics | None:
    """Serve a projection worker's metrics on INCIDENTS_METRICS_PORT; None when it is 0.

    Call it in the worker's event loop; `stop()` the result at shutdown.
    """
    if settings.metrics_port == 0:
        return None
    metrics = ProcessMetrics(host=settings.metrics_host, port=settings.metrics_port)
    metrics.observe(registry, projections)
    try:
        metrics.start()
    except BaseException:
        metrics.stop()
        raise
    return metrics
