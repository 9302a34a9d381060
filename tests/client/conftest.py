"""Fixtures of the client library's tests: clients on a real server, and a fault proxy."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from incident_registry_client import (
    RegistryClient,
    RetryPolicy,
    TimePrecision,
    Weapon,
    WeaponKind,
    WriteResult,
)

import tests.support.harness as harness_module
from service.api.server import start_server
from tests.client.proxy import FaultProxy
from tests.support.harness import ServerHarness

ACTOR = "analyst@fedpol.example"
ANDERLECHT = "21001"
IXELLES = "21009"
MIDI_ZONE = "5341"

FAST_RETRY = RetryPolicy(
    max_attempts=4, initial_backoff=0.01, max_backoff=0.05, rng=random.Random(7)
)
"""Retries that keep the tests quick (server RetryInfo delays are capped at 50 ms)."""


def hours_ago(hours: float) -> datetime:
    """An aware UTC time `hours` ago."""
    return datetime.now(UTC) - timedelta(hours=hours)


def report(client: RegistryClient, **overrides: Any) -> WriteResult:
    """Report an assault-rifle shooting in Anderlecht two hours ago, with overrides."""
    fields: dict[str, Any] = {
        "occurred_at": hours_ago(2),
        "occurred_at_precision": TimePrecision.MINUTE,
        "municipality_code": ANDERLECHT,
        "weapons": [Weapon(WeaponKind.ASSAULT_RIFLE, 2)],
        "injured": 1,
        "description": "shots fired at a drug selling point",
    }
    fields.update(overrides)
    return client.report_shooting(**fields)


@pytest.fixture
def client(server: ServerHarness) -> Iterator[RegistryClient]:
    """A client of the test server."""
    with RegistryClient(server.target, actor=ACTOR, retry=FAST_RETRY) as registry:
        yield registry


@pytest.fixture
def proxy(server: ServerHarness) -> Iterator[FaultProxy]:
    """A fault proxy in front of the test server."""
    faults = FaultProxy(server.target)
    yield faults
    faults.stop()


@pytest.fixture
def proxied(proxy: FaultProxy) -> Iterator[RegistryClient]:
    """A client that reaches the test server through the fault proxy."""
    with RegistryClient(proxy.target, actor=ACTOR, retry=FAST_RETRY, timeout=5) as registry:
        yield registry


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fixed_port_server(
    tmp_path, backend_factory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerHarness]:
    """A server that listens on the same port after `restart()` (the harness picks a new one)."""
    port = free_port()

    def on_fixed_port(registry: Any, address: str, **options: Any) -> Any:
        return start_server(registry, f"127.0.0.1:{port}", **options)

    monkeypatch.setattr(harness_module, "start_server", on_fixed_port)
    harness = ServerHarness(tmp_path / "registry.sqlite", backend_factory=backend_factory).start()
    yield harness
    harness.stop()
