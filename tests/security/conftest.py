"""Fixtures of the security tests: certificates, a token per role, secured servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.security.auth import ServerSecurity, build_guard, hash_token
from service.security.roles import ROLES
from service.security.settings import SecuritySettings
from service.security.tls import server_credentials
from tests.support.certs import Issued, client_certificate, make_ca, server_certificate
from tests.support.harness import ServerHarness


def role_token(role: str) -> str:
    """The bearer token of the test user holding only `role`."""
    return f"test-token-for-{role}-0123456789abcdef"


def role_user(role: str) -> str:
    """The identity of the test user holding only `role`."""
    return f"{role}-user"


ALICE_TOKEN = "alice-secret-token-5f3c9a1e7d2b"
"""Alice's token: a reporter and an investigator."""


def write_tokens_file(path: Path) -> Path:
    """A tokens file with one user per role, and alice (reporter, investigator)."""
    entries = [
        {"identity": role_user(role), "roles": [role], "sha256": hash_token(role_token(role))}
        for role in ROLES
    ]
    entries.append(
        {
            "identity": "alice",
            "roles": ["reporter", "investigator"],
            "sha256": hash_token(ALICE_TOKEN),
        }
    )
    path.write_text(json.dumps({"tokens": entries}), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Pki:
    """A CA with a server certificate, client certificates, and a second, unrelated CA."""

    folder: Path
    ca: Issued
    server: Issued
    client: Issued
    expired_client: Issued
    other_ca: Issued
    foreign_client: Issued

    def path(self, name: str) -> Path:
        """The path of a written PEM file."""
        return self.folder / name


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates for the whole run, written into a folder."""
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    other_ca = make_ca("Another CA")
    pki = Pki(
        folder=folder,
        ca=ca,
        server=server_certificate(ca),
        client=client_certificate(ca, "ops-1.registry.internal"),
        expired_client=client_certificate(ca, "ops-1.registry.internal", expired=True),
        other_ca=other_ca,
        foreign_client=client_certificate(other_ca, "ops-1.registry.internal"),
    )
    (folder / "ca.pem").write_bytes(ca.cert)
    (folder / "other-ca.pem").write_bytes(other_ca.cert)
    pki.server.write(folder, "server")
    pki.client.write(folder, "client")
    return pki


StartServer = Callable[..., ServerHarness]


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start registry servers with the given SecuritySettings; all stopped at the end."""
    started: list[ServerHarness] = []

    def start(settings: SecuritySettings) -> ServerHarness:
        security = ServerSecurity(
            credentials=server_credentials(settings), guard=build_guard(settings)
        )
        harness = ServerHarness(
            tmp_path / f"registry-{len(started)}.sqlite", security=security
        ).start()
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.stop()


@pytest.fixture
def token_server(secured_server: StartServer, tmp_path: Path) -> ServerHarness:
    """A plaintext loopback server authenticating with the tokens file of `write_tokens_file`."""
    tokens = write_tokens_file(tmp_path / "tokens.json")
    return secured_server(SecuritySettings(auth="tokens", auth_tokens_file=tokens))
