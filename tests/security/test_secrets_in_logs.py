"""Secrets never reach the logs: the real server process, JSON logs at debug level."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
)

from tests.e2e.test_server_process import free_port
from tests.security.conftest import ALICE_TOKEN, Pki, role_token, write_tokens_file

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pg-password-that-must-never-be-logged-7c1e"
JWT_SECRET = "jwt-shared-secret-that-must-never-be-logged-41aa"
BAD_TOKEN = "bad-token-that-must-never-be-logged-9e2f"


def run_server(env: dict[str, str], calls, tmp_path: Path, credentials) -> str:
    """Start `python -m service` with `env`, make `calls`, stop it; return everything it printed."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    variables = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")},
        "INCIDENTS_LISTEN_ADDRESS": target,
        "INCIDENTS_SQLITE_PATH": str(tmp_path / "registry.sqlite"),
        "INCIDENTS_LOG_FORMAT": "json",
        "INCIDENTS_LOG_LEVEL": "debug",
        "INCIDENTS_POSTGRES_PASSWORD": PASSWORD,
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        options = [("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(target, credentials, options=options) as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            calls(event_log_service_pb2_grpc.EventLogServiceStub(channel))
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    return output


def head(stub, token: str) -> grpc.StatusCode:
    try:
        stub.GetHead(
            event_log_service_pb2.GetHeadRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=5,
        )
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def key_material(pem: bytes) -> list[str]:
    """The base64 lines of a PEM file (what would show if its contents were logged)."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


@pytest.mark.timeout(120)
def test_tokens_keys_and_password_stay_out_of_the_logs(pki: Pki, tmp_path: Path):
    tokens = write_tokens_file(tmp_path / "tokens.json")
    env = {
        "INCIDENTS_TLS_CERT_FILE": str(pki.path("server.pem")),
        "INCIDENTS_TLS_KEY_FILE": str(pki.path("server-key.pem")),
        "INCIDENTS_AUTH": "tokens",
        "INCIDENTS_AUTH_TOKENS_FILE": str(tokens),
    }
    seen: list[grpc.StatusCode] = []

    def calls(stub) -> None:
        seen.append(head(stub, ALICE_TOKEN))
        seen.append(head(stub, BAD_TOKEN))
        seen.append(head(stub, role_token("analyst")))

    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    output = run_server(env, calls, tmp_path, credentials)
    assert seen == [
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.OK,
    ]
    records = lines(output)
    started = next(r for r in records if r["event"] == "server_started")
    assert (started["transport"], started["auth"]) == ("tls", "tokens")
    completed = [r for r in records if r["event"] == "rpc_completed"]
    assert [(r["code"], r["actor"]) for r in completed] == [
        ("OK", "alice"),
        ("UNAUTHENTICATED", ""),
        ("OK", "analyst-user"),
    ]
    assert completed[1]["refused"] == "invalid bearer token"
    for secret in [ALICE_TOKEN, BAD_TOKEN, role_token("analyst"), PASSWORD, "Bearer"]:
        assert secret not in output
    for line in key_material(pki.server.key):
        assert line not in output
    assert "authorization" not in output.lower()


@pytest.mark.timeout(120)
def test_jwts_and_their_secret_stay_out_of_the_logs(pki: Pki, tmp_path: Path):
    secret = tmp_path / "jwt-secret"
    secret.write_text(JWT_SECRET, encoding="utf-8")
    env = {
        "INCIDENTS_TLS_CERT_FILE": str(pki.path("server.pem")),
        "INCIDENTS_TLS_KEY_FILE": str(pki.path("server-key.pem")),
        "INCIDENTS_AUTH": "jwt",
        "INCIDENTS_AUTH_JWT_SECRET_FILE": str(secret),
    }
    now = int(time.time())
    good = jwt.encode({"sub": "erin", "roles": ["operator"], "exp": now + 600}, JWT_SECRET)
    expired = jwt.encode({"sub": "erin", "roles": ["operator"], "exp": now - 600}, JWT_SECRET)
    seen: list[grpc.StatusCode] = []

    def calls(stub) -> None:
        seen.append(head(stub, good))
        seen.append(head(stub, expired))

    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    output = run_server(env, calls, tmp_path, credentials)
    assert seen == [grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED]
    for value in [JWT_SECRET, good, expired, PASSWORD, *good.split("."), *expired.split(".")[1:]]:
        assert value not in output
    assert "bearer token has expired" in output
