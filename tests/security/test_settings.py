"""The security settings: parsing, consistency, and when plaintext or no auth is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.__main__ import main
from service.config import ConfigError, Settings
from service.security import tokens
from service.security.auth import hash_token
from service.security.settings import (
    Exposure,
    SecurityConfigError,
    SecuritySettings,
    check_exposure,
    is_loopback_address,
    security_from_env,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_security_variable_is_read():
    env = {
        "INCIDENTS_TLS_CERT_FILE": "/tls/server.pem",
        "INCIDENTS_TLS_KEY_FILE": "/tls/server-key.pem",
        "INCIDENTS_TLS_CLIENT_CA_FILE": "/tls/clients-ca.pem",
        "INCIDENTS_ALLOW_PLAINTEXT": "false",
        "INCIDENTS_AUTH": "JWT",
        "INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE": "/auth/idp.pem",
        "INCIDENTS_AUTH_JWT_ISSUER": "https://idp.example",
        "INCIDENTS_AUTH_JWT_AUDIENCE": "incident-registry",
        "INCIDENTS_AUTH_CERT_ROLES_FILE": "/auth/certificates.json",
    }
    assert Settings.from_env(env).security == SecuritySettings(
        tls_cert_file=Path("/tls/server.pem"),
        tls_key_file=Path("/tls/server-key.pem"),
        tls_client_ca_file=Path("/tls/clients-ca.pem"),
        auth="jwt",
        auth_jwt_public_key_file=Path("/auth/idp.pem"),
        auth_jwt_issuer="https://idp.example",
        auth_jwt_audience="incident-registry",
        auth_cert_roles_file=Path("/auth/certificates.json"),
    )
    tokens_env = {"INCIDENTS_AUTH": "tokens", "INCIDENTS_AUTH_TOKENS_FILE": "/t.json"}
    assert security_from_env(tokens_env).auth_tokens_file == Path("/t.json")
    assert Settings.from_env({}).security == SecuritySettings()
    assert security_from_env({"INCIDENTS_ALLOW_PLAINTEXT": "yes"}).allow_plaintext


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INCIDENTS_TLS_CERT_FILE": "c.pem"}, "both INCIDENTS_TLS_CERT_FILE"),
        ({"INCIDENTS_TLS_CLIENT_CA_FILE": "ca.pem"}, "needs INCIDENTS_TLS_CERT_FILE"),
        ({"INCIDENTS_AUTH": "ldap"}, "INCIDENTS_AUTH must be one of"),
        ({"INCIDENTS_AUTH": "tokens"}, "needs INCIDENTS_AUTH_TOKENS_FILE"),
        ({"INCIDENTS_AUTH_TOKENS_FILE": "t.json"}, "is not 'tokens'"),
        ({"INCIDENTS_AUTH": "jwt"}, "exactly one of"),
        (
            {
                "INCIDENTS_AUTH": "jwt",
                "INCIDENTS_AUTH_JWT_SECRET_FILE": "s",
                "INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE": "p",
            },
            "exactly one of",
        ),
        ({"INCIDENTS_AUTH_JWT_ISSUER": "x"}, "is not 'jwt'"),
        ({"INCIDENTS_AUTH": "certificates"}, "needs INCIDENTS_AUTH_CERT_ROLES_FILE"),
        (
            {
                "INCIDENTS_AUTH": "tokens",
                "INCIDENTS_AUTH_TOKENS_FILE": "t",
                "INCIDENTS_AUTH_CERT_ROLES_FILE": "r",
            },
            "needs mutual TLS",
        ),
        ({"INCIDENTS_ALLOW_PLAINTEXT": "maybe"}, "must be true or false"),
    ],
)
def test_inconsistent_settings_are_configuration_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("localhost:50051", True),
        ("127.0.0.1:0", True),
        ("127.8.9.1:1", True),
        ("[::1]:50051", True),
        ("unix:/run/registry.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        ("registry.example:443", False),
        ("10.0.0.5:50051", False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert is_loopback_address(address) is loopback


def test_plaintext_needs_loopback_or_an_explicit_allowance():
    tls = SecuritySettings(tls_cert_file=Path("c"), tls_key_file=Path("k"), auth="none")
    assert check_exposure("localhost:50051", SecuritySettings()) == Exposure(
        "plaintext", "loopback address"
    )
    with pytest.raises(
        SecurityConfigError, match=r"refusing to serve 0\.0\.0\.0:50051 in plaintext"
    ):
        check_exposure("0.0.0.0:50051", SecuritySettings(auth="none"))
    allowed = SecuritySettings(allow_plaintext=True, auth="none")
    assert check_exposure("0.0.0.0:50051", allowed) == Exposure(
        "plaintext", "INCIDENTS_ALLOW_PLAINTEXT=true"
    )
    assert check_exposure("0.0.0.0:50051", tls).transport == "tls"
    mutual = SecuritySettings(
        tls_cert_file=Path("c"), tls_key_file=Path("k"), tls_client_ca_file=Path("ca"), auth="none"
    )
    assert check_exposure("0.0.0.0:50051", mutual).transport == "mtls"
    with pytest.raises(SecurityConfigError, match="INCIDENTS_AUTH must be set"):
        check_exposure(
            "0.0.0.0:50051", SecuritySettings(tls_cert_file=Path("c"), tls_key_file=Path("k"))
        )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INCIDENTS_LISTEN_ADDRESS": "0.0.0.0:0", "INCIDENTS_AUTH": "none"}, "in plaintext"),
        (
            {"INCIDENTS_LISTEN_ADDRESS": "0.0.0.0:0", "INCIDENTS_ALLOW_PLAINTEXT": "true"},
            "INCIDENTS_AUTH must be set",
        ),
        (
            {"INCIDENTS_AUTH": "tokens", "INCIDENTS_AUTH_TOKENS_FILE": "/nonexistent/tokens.json"},
            "cannot read /nonexistent/tokens.json",
        ),
    ],
)
def test_the_server_refuses_to_start_with_exit_code_2(monkeypatch, capsys, env, message):
    for name in list(os.environ):
        if name.startswith("INCIDENTS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error:")
    assert message in err


def test_the_token_tool_makes_and_hashes_tokens(capsys):
    assert (
        tokens.main(["new", "--identity", "dana", "--role", "analyst", "--role", "operator"]) == 0
    )
    token_line, entry_line = capsys.readouterr().out.splitlines()
    token = token_line.removeprefix("token: ")
    entry = json.loads(entry_line.removeprefix("entry: "))
    assert len(token) >= 43
    assert entry == {
        "identity": "dana",
        "roles": ["analyst", "operator"],
        "sha256": hash_token(token),
    }
    hashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.security.tokens",
            "hash",
            "--identity",
            "dana",
            "--role",
            "analyst",
        ],
        input=token + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert json.loads(hashed.stdout)["sha256"] == entry["sha256"]
    assert token not in hashed.stdout
