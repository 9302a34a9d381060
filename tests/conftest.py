"""Fixtures: a fresh registry server per test, and client stubs on a real channel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    asset_service_pb2_grpc,
    command_service_pb2_grpc,
    gang_service_pb2_grpc,
    incident_service_pb2_grpc,
)

from service.logs import configure_logging
from service.store.base import EventStoreBackend
from service.store.postgres import PostgresEventStore, PostgresSettings
from service.store.sqlite import SQLiteEventStore
from tests.support.harness import ServerHarness
from tests.support.postgres import fresh_schema, postgres_server


@pytest.fixture(scope="session", autouse=True)
def _quiet_logs() -> None:
    """Servers in the tests log warnings only: access lines would drown pytest's output."""
    configure_logging(level="warning", fmt="console")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresSettings]:
    """A PostgreSQL server for the whole run."""
    with postgres_server() as settings:
        yield settings


@pytest.fixture
def backend_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], EventStoreBackend]]:
    """Opens the event store a test's server runs on: SQLite, or PostgreSQL (fresh schema)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        path = tmp_path / "registry.sqlite"
        yield lambda: SQLiteEventStore(path)
        return
    server = request.getfixturevalue("postgres")
    with fresh_schema(server) as settings:
        yield lambda: PostgresEventStore(settings)


@pytest.fixture
def server(
    tmp_path: Path, backend_factory: Callable[[], EventStoreBackend]
) -> Iterator[ServerHarness]:
    """A registry server on a fresh store (SQLite unless the test asks for both backends)."""
    harness = ServerHarness(tmp_path / "registry.sqlite", backend_factory=backend_factory).start()
    yield harness
    harness.stop()


@pytest.fixture
def channel(server: ServerHarness) -> Iterator[grpc.Channel]:
    """A channel to the server."""
    with server.channel() as chan:
        yield chan


@pytest.fixture
def incidents(channel: grpc.Channel) -> incident_service_pb2_grpc.IncidentServiceStub:
    """IncidentService stub."""
    return incident_service_pb2_grpc.IncidentServiceStub(channel)


@pytest.fixture
def gangs(channel: grpc.Channel) -> gang_service_pb2_grpc.GangServiceStub:
    """GangService stub."""
    return gang_service_pb2_grpc.GangServiceStub(channel)


@pytest.fixture
def commands(channel: grpc.Channel) -> command_service_pb2_grpc.PoliceCommandServiceStub:
    """PoliceCommandService stub."""
    return command_service_pb2_grpc.PoliceCommandServiceStub(channel)


@pytest.fixture
def assets(channel: grpc.Channel) -> asset_service_pb2_grpc.AssetRecoveryServiceStub:
    """AssetRecoveryService stub."""
    return asset_service_pb2_grpc.AssetRecoveryServiceStub(channel)
