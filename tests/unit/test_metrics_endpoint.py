"""Where metrics are served, and the HTTP endpoint that serves them."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from service.config import Settings
from service.metrics import MetricsEndpoint, ServerMetrics, metrics_port, server_metrics


def test_metrics_are_off_unless_a_port_is_set() -> None:
    assert metrics_port(Settings()) == 0
    assert metrics_port(Settings(process_index=3)) == 0
    assert server_metrics(Settings(process_index=3)) is None


def test_each_server_process_gets_the_next_port() -> None:
    assert [metrics_port(Settings(metrics_port=9400, process_index=i)) for i in range(3)] == [
        9400,
        9401,
        9402,
    ]
    metrics = server_metrics(Settings(metrics_host="0.0.0.0", metrics_port=9400, process_index=2))
    assert isinstance(metrics, ServerMetrics)
    assert (metrics.endpoint.host, metrics.endpoint.requested_port) == ("0.0.0.0", 9402)


def test_a_port_past_the_last_one_is_refused() -> None:
    assert metrics_port(Settings(metrics_port=65535)) == 65535
    with pytest.raises(OSError, match="65536"):
        metrics_port(Settings(metrics_port=65535, process_index=1))


def test_the_endpoint_serves_the_text_format_of_its_own_registry_until_stopped() -> None:
    registry = CollectorRegistry()
    Counter("probe_calls", "Calls of the probe.", registry=registry).inc(3)
    endpoint = MetricsEndpoint(registry, "127.0.0.1", 0)
    port = endpoint.start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "probe_calls_total 3.0" in body.splitlines()
        # Only this registry: nothing of the library's global one.
        assert "python_info" not in body
        taken = MetricsEndpoint(CollectorRegistry(), "127.0.0.1", port)
        with pytest.raises(OSError, match=f"metrics on 127.0.0.1:{port}: Address already in use"):
            taken.start()
    finally:
        endpoint.stop()
    endpoint.stop()  # a second stop is harmless
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)
