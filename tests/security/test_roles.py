"""The roles table: every RPC of every service, each role, over a real channel; the README."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import grpc
import incident_registry_client.proto.incidents.v1 as proto_package
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.security import roles
from service.security.auth import ServerSecurity, build_guard
from service.security.roles import ADMIN, ROLES, RPC_ROLES, UnmappedRpcError, allowed_roles
from service.security.settings import SecuritySettings
from tests.security.conftest import role_token, write_tokens_file
from tests.support.harness import ServerHarness

ROOT = Path(__file__).resolve().parents[2]
DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def proto_rpcs() -> dict[str, bool]:
    """Every RPC of every service in the generated modules: full name -> server streaming."""
    found: dict[str, bool] = {}
    for module_info in pkgutil.iter_modules(proto_package.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{proto_package.__name__}.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found[f"/{service.full_name}/{method.name}"] = method.server_streaming
    return found


RPCS = proto_rpcs()


def call_code(channel: grpc.Channel, method: str, streaming: bool, token: str | None):
    """The status of calling `method` with an empty request (OK if it answered at all)."""
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    if streaming:
        stream: Any = channel.unary_stream(method)
        stream = stream(b"", metadata=metadata, timeout=10)
        try:
            next(stream)
        except StopIteration:
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()
        finally:
            stream.cancel()
        return grpc.StatusCode.OK
    try:
        unary: Any = channel.unary_unary(method)
        unary(b"", metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_the_table_lists_exactly_the_rpcs_of_the_proto_files():
    assert len(RPCS) >= 38
    assert sorted(set(RPCS) - set(RPC_ROLES)) == []
    assert sorted(set(RPC_ROLES) - set(RPCS)) == []
    assert all(allowed <= set(ROLES) - {ADMIN} for allowed in RPC_ROLES.values())


def test_every_rpc_with_every_role_is_allowed_or_denied_as_the_table_says(token_server):
    mismatches: list[str] = []
    with token_server.channel() as channel:
        for method, streaming in sorted(RPCS.items()):
            unauthenticated = call_code(channel, method, streaming, None)
            if unauthenticated != grpc.StatusCode.UNAUTHENTICATED:
                mismatches.append(f"{method} without a token: {unauthenticated.name}")
            for role in ROLES:
                code = call_code(channel, method, streaming, role_token(role))
                allowed = role in allowed_roles(method)
                if allowed and (code in DENIED or code == grpc.StatusCode.UNIMPLEMENTED):
                    mismatches.append(f"{method} as {role}: {code.name}, expected allowed")
                if not allowed and code != grpc.StatusCode.PERMISSION_DENIED:
                    mismatches.append(f"{method} as {role}: {code.name}, expected denied")
    assert mismatches == []


def test_health_and_reflection_stay_open_without_a_token(token_server):
    with token_server.channel() as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(
            reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        )
        names = {s.name for s in answers[0].list_services_response.service}
        assert "incidents.v1.IncidentService" in names


@pytest.mark.parametrize("guarded", [False, True])
def test_a_server_with_an_unmapped_rpc_refuses_to_start(tmp_path, monkeypatch, guarded):
    monkeypatch.delitem(roles.RPC_ROLES, "/incidents.v1.WaveService/ListWaves")
    security = None
    if guarded:
        tokens = write_tokens_file(tmp_path / "tokens.json")
        guard = build_guard(SecuritySettings(auth="tokens", auth_tokens_file=tokens))
        security = ServerSecurity(guard=guard)
    harness = ServerHarness(tmp_path / "registry.sqlite", security=security)
    try:
        with pytest.raises(UnmappedRpcError, match="ListWaves"):
            harness.start()
    finally:
        harness.stop()


ROW = re.compile(r"^\| `(/incidents\.v1\.[A-Za-z]+/[A-Za-z]+)` \|(.*)\|\s*$")


def readme_table() -> tuple[list[str], dict[str, frozenset[str]]]:
    """The README's role table: its role columns, and each RPC's ticked roles."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| RPC | reporter"))
    columns = [cell.strip() for cell in lines[header].strip("|").split("|")][1:]
    table: dict[str, frozenset[str]] = {}
    for line in lines[header + 2 :]:
        match = ROW.match(line)
        if match is None:
            break
        cells = [cell.strip() for cell in match.group(2).split("|")]
        assert len(cells) == len(columns), line
        table[match.group(1)] = frozenset(
            role for role, cell in zip(columns, cells, strict=True) if cell == "✓"
        )
    return columns, table


def test_the_readme_table_is_the_code_table():
    columns, table = readme_table()
    assert columns == list(ROLES)
    assert table == {method: allowed_roles(method) for method in RPC_ROLES}
