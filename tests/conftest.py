"""Fixtures: a fresh registry server per test, and client stubs on a real channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    asset_service_pb2_grpc,
    command_service_pb2_grpc,
    gang_service_pb2_grpc,
    incident_service_pb2_grpc,
)

from tests.support.harness import ServerHarness


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHarness]:
    """A registry server on a fresh SQLite file."""
    harness = ServerHarness(tmp_path / "registry.sqlite").start()
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
