"""Assertions shared by the integration tests: rejected writes, envelopes, write results."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import common_pb2, events_pb2

from tests.support import builders as b
from tests.support.builders import ACTOR, ACTOR_METADATA, detail
from tests.support.harness import ServerHarness

Rpc = Callable[..., Any]


def head(server: ServerHarness) -> int:
    """The position of the last event in the server's log."""
    assert server.registry is not None
    return server.registry.backend.head()


def rejected(server: ServerHarness, rpc: Rpc, request: Message, code: grpc.StatusCode) -> Any:
    """Call `rpc`, expect `code`, and check that nothing was appended to the log."""
    before = head(server)
    with pytest.raises(grpc.RpcError) as failure:
        rpc(request, metadata=ACTOR_METADATA)
    assert failure.value.code() == code, failure.value.details()
    assert head(server) == before, "a rejected write appended events"
    return failure.value


def written(server: ServerHarness, result: common_pb2.WriteResult, *, version: int) -> str:
    """Check an accepted, fresh write landed at the head of the log; return the aggregate id."""
    assert str(UUID(result.aggregate_id)) == result.aggregate_id
    assert result.version == version
    assert result.position == head(server)
    assert not result.replayed
    return result.aggregate_id


def envelope(
    env: events_pb2.EventEnvelope,
    *,
    event_type: str,
    stream_type: str,
    stream_id: str,
    stream_version: int,
    request_id: str,
    payload_field: str,
) -> Any:
    """Check an envelope's identity, metadata and payloads; return its typed payload."""
    assert env.event_type == event_type
    assert env.stream_type == stream_type
    assert env.stream_id == stream_id
    assert env.stream_version == stream_version
    assert env.position > 0
    assert UUID(env.event_id)
    assert env.schema_version == 1
    # Who and which request: the x-actor header and the idempotency key.
    assert env.metadata.actor == ACTOR
    assert env.metadata.request_id == request_id
    assert env.metadata.correlation_id == request_id
    # The typed payload and the JSON payload say the same thing.
    assert env.WhichOneof("payload") == payload_field
    payload = getattr(env, payload_field)
    from_json = json_format.ParseDict(json.loads(env.payload_json), type(payload)())
    assert from_json == payload
    # Recording time is the registry's clock; business time may lie in the past.
    recorded = env.recorded_at.ToDatetime(tzinfo=UTC)
    assert datetime.now(UTC) - timedelta(minutes=1) < recorded <= datetime.now(UTC)
    assert env.HasField("occurred_at")
    assert env.occurred_at.ToDatetime(tzinfo=UTC) <= recorded + timedelta(seconds=1)
    return payload


def positions_increase(history: list[events_pb2.EventEnvelope]) -> None:
    """Versions count 1, 2, 3... and log positions strictly increase."""
    assert [e.stream_version for e in history] == list(range(1, len(history) + 1))
    positions = [e.position for e in history]
    assert positions == sorted(set(positions))


def version_conflict(
    server: ServerHarness, rpc: Rpc, request: Message, *, expected: int, actual: int
) -> None:
    """A wrong expected_version is ABORTED with both versions in ErrorInfo metadata."""
    err = rejected(server, rpc, request, grpc.StatusCode.ABORTED)
    info = detail(err, error_details_pb2.ErrorInfo)
    assert info.reason == "VERSION_CONFLICT"
    assert info.domain == "incidents.v1"
    assert info.metadata["expected_version"] == str(expected)
    assert info.metadata["actual_version"] == str(actual)


def request_id_reused(server: ServerHarness, rpc: Rpc, first: Message, second: Message) -> None:
    """`first` is accepted; `second`, same request_id but another payload, is ALREADY_EXISTS."""
    rpc(first, metadata=ACTOR_METADATA)
    err = rejected(server, rpc, second, grpc.StatusCode.ALREADY_EXISTS)
    info = detail(err, error_details_pb2.ErrorInfo)
    assert info.reason == "REQUEST_ID_REUSED"
    assert info.metadata["request_id"] == first.request_id  # type: ignore[attr-defined]


def not_found(
    server: ServerHarness, rpc: Rpc, request: Message, *, resource_type: str, name: str
) -> None:
    """NOT_FOUND names the missing resource in ResourceInfo."""
    err = rejected(server, rpc, request, grpc.StatusCode.NOT_FOUND)
    info = detail(err, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == (resource_type, name)


def precondition(
    server: ServerHarness, rpc: Rpc, request: Message, *, rule: str, subject: str
) -> error_details_pb2.PreconditionFailure.Violation:
    """FAILED_PRECONDITION names the broken rule and its subject in PreconditionFailure."""
    err = rejected(server, rpc, request, grpc.StatusCode.FAILED_PRECONDITION)
    (violation,) = detail(err, error_details_pb2.PreconditionFailure).violations
    assert (violation.type, violation.subject) == (rule, subject)
    assert violation.description
    return violation


def new_incident(incidents: Any, **overrides: Any) -> str:
    """Report a shooting; return its incident id."""
    reply = incidents.ReportShooting(b.shooting(**overrides), metadata=ACTOR_METADATA)
    return str(reply.result.aggregate_id)


def new_gang(gangs: Any, **overrides: Any) -> str:
    """Register a gang; return its id."""
    return str(gangs.RegisterGang(b.gang(**overrides), metadata=ACTOR_METADATA).result.aggregate_id)


def invalid(server: ServerHarness, rpc: Rpc, request: Message, field: str) -> str:
    """INVALID_ARGUMENT whose BadRequest names exactly `field`; return its description."""
    err = rejected(server, rpc, request, grpc.StatusCode.INVALID_ARGUMENT)
    violations = b.field_violations(err)
    assert list(violations) == [field], violations
    return violations[field]
