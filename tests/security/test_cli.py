"""The `incidents` command against secured servers: --token, --token-file, TLS options."""

from __future__ import annotations

from pathlib import Path

from incident_registry_client.cli.app import app
from typer.testing import CliRunner

from service.security.settings import SecuritySettings
from tests.cli.conftest import invoke
from tests.security.conftest import ALICE_TOKEN, Pki, StartServer, role_token


def test_the_token_options_authenticate_the_command(token_server, tmp_path):
    target = token_server.target
    written = invoke(target, "--json", "--token", ALICE_TOKEN, "register-gang", "Crew T")
    assert '"version": 1' in written.stdout
    token_file = tmp_path / "token"
    token_file.write_text(role_token("investigator") + "\n", encoding="utf-8")
    invoke(target, "--token-file", str(token_file), "register-gang", "Crew U")
    denied = invoke(target, "register-gang", "Crew V", code=6)
    assert "UNAUTHENTICATED" in denied.stderr
    assert "--token" in denied.stderr
    refused = invoke(target, "--token", role_token("analyst"), "register-gang", "Crew W", code=6)
    assert "PERMISSION_DENIED" in refused.stderr
    both = invoke(target, "--token", "a", "--token-file", str(token_file), "verify", code=2)
    assert "--token-file" in both.output
    from_env = CliRunner().invoke(
        app,
        ["--target", target, "--no-progress", "register-gang", "Crew X"],
        env={"INCIDENTS_TOKEN": ALICE_TOKEN},
    )
    assert from_env.exit_code == 0, from_env.output


def test_the_tls_options_reach_a_tls_server_with_a_token(
    secured_server: StartServer, pki: Pki, tmp_path
):
    server = secured_server(
        SecuritySettings(
            tls_cert_file=pki.path("server.pem"),
            tls_key_file=pki.path("server-key.pem"),
            tls_client_ca_file=pki.path("ca.pem"),
            auth="certificates",
            auth_cert_roles_file=_roles_file(tmp_path),
        )
    )
    tls = [
        "--ca",
        str(pki.path("ca.pem")),
        "--cert",
        str(pki.path("client.pem")),
        "--key",
        str(pki.path("client-key.pem")),
    ]
    invoke(server.target, *tls, "register-gang", "Crew M")
    unreachable = invoke(
        server.target, "--ca", str(pki.path("ca.pem")), "register-gang", "Crew N", code=5
    )
    assert "UNAVAILABLE" in unreachable.stderr


def _roles_file(folder: Path) -> Path:
    path = folder / "cert-roles.json"
    path.write_text(
        '{"certificates": [{"identity": "ops-1.registry.internal", "roles": ["investigator"]}]}',
        encoding="utf-8",
    )
    return path
