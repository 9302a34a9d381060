"""TLS and mutual TLS with certificates made in the test, through the client library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from incident_registry_client import (
    NO_RETRY,
    PermissionDeniedError,
    RegistryClient,
    TlsOptions,
    UnauthenticatedError,
    UnavailableError,
)

from service import healthcheck
from service.security.settings import SecurityConfigError, SecuritySettings
from service.security.tls import server_credentials
from tests.security.conftest import Pki, StartServer, role_token, write_tokens_file
from tests.support.certs import issue


def tls_settings(pki: Pki, **others) -> SecuritySettings:
    return SecuritySettings(
        tls_cert_file=pki.path("server.pem"), tls_key_file=pki.path("server-key.pem"), **others
    )


def client(target: str, roots: bytes, cert=None, **options) -> RegistryClient:
    tls = TlsOptions(
        root_certificates=roots,
        certificate_chain=None if cert is None else cert.cert,
        private_key=None if cert is None else cert.key,
    )
    return RegistryClient(target, tls=tls, retry=NO_RETRY, timeout=5, **options)


def test_tls_serves_clients_that_trust_its_ca_only(secured_server: StartServer, pki: Pki):
    server = secured_server(tls_settings(pki))
    with client(server.target, pki.ca.cert) as registry:
        assert registry.secure
        assert registry.get_head().position == 0
    with client(server.target, pki.other_ca.cert) as wrong_ca, pytest.raises(UnavailableError):
        wrong_ca.get_head()
    with (
        RegistryClient(server.target, insecure=True, retry=NO_RETRY, timeout=5) as plain,
        pytest.raises(UnavailableError),
    ):
        plain.get_head()


def test_mutual_tls_requires_a_valid_client_certificate(secured_server: StartServer, pki: Pki):
    server = secured_server(tls_settings(pki, tls_client_ca_file=pki.path("ca.pem")))
    with client(server.target, pki.ca.cert, pki.client) as registry:
        assert registry.get_head().position == 0
    for cert in (None, pki.expired_client, pki.foreign_client):
        with client(server.target, pki.ca.cert, cert) as refused, pytest.raises(UnavailableError):
            refused.get_head()


def test_client_certificates_authenticate_with_the_roles_file(
    secured_server: StartServer, pki: Pki, tmp_path: Path
):
    roles = tmp_path / "cert-roles.json"
    roles.write_text(
        json.dumps(
            {"certificates": [{"identity": "ops-1.registry.internal", "roles": ["operator"]}]}
        ),
        encoding="utf-8",
    )
    server = secured_server(
        tls_settings(
            pki,
            tls_client_ca_file=pki.path("ca.pem"),
            auth="tokens",
            auth_tokens_file=write_tokens_file(tmp_path / "tokens.json"),
            auth_cert_roles_file=roles,
        )
    )
    with client(server.target, pki.ca.cert, pki.client) as operator:
        assert operator.get_head().position == 0
        assert list(operator.iter_all()) == []
        with pytest.raises(PermissionDeniedError, match=r"ops-1\.registry\.internal may not call"):
            operator.register_gang(name="Clan C")
    # A bearer token, when sent, decides over the certificate.
    with client(
        server.target, pki.ca.cert, pki.client, bearer_token=role_token("investigator")
    ) as investigator:
        assert investigator.register_gang(name="Clan C").version == 1
        with pytest.raises(PermissionDeniedError):
            list(investigator.iter_all())
    with (
        client(server.target, pki.ca.cert, pki.client, bearer_token="tampered") as bad,
        pytest.raises(UnauthenticatedError),
    ):
        bad.get_head()


def test_an_unlisted_certificate_is_unauthenticated(
    secured_server: StartServer, pki: Pki, tmp_path: Path
):
    roles = tmp_path / "cert-roles.json"
    roles.write_text(
        json.dumps({"certificates": [{"identity": "someone-else", "roles": ["admin"]}]}),
        encoding="utf-8",
    )
    server = secured_server(
        tls_settings(
            pki,
            tls_client_ca_file=pki.path("ca.pem"),
            auth="certificates",
            auth_cert_roles_file=roles,
        )
    )
    with (
        client(server.target, pki.ca.cert, pki.client) as registry,
        pytest.raises(UnauthenticatedError, match="not registered"),
    ):
        registry.get_head()
    with (
        client(server.target, pki.ca.cert, pki.client, bearer_token="x") as with_token,
        pytest.raises(UnauthenticatedError, match="does not accept bearer tokens"),
    ):
        with_token.get_head()


def test_bad_certificate_files_stop_the_server_with_a_clear_message(pki: Pki, tmp_path: Path):
    other_key = pki.client.write(tmp_path, "client")[1]
    with pytest.raises(SecurityConfigError, match="not the key of the certificate"):
        server_credentials(
            SecuritySettings(tls_cert_file=pki.path("server.pem"), tls_key_file=other_key)
        )
    with pytest.raises(SecurityConfigError, match="holds no PEM certificate"):
        server_credentials(
            SecuritySettings(tls_cert_file=other_key, tls_key_file=pki.path("server-key.pem"))
        )
    with pytest.raises(SecurityConfigError, match="cannot read") as caught:
        server_credentials(
            SecuritySettings(
                tls_cert_file=pki.path("server.pem"), tls_key_file=tmp_path / "missing.pem"
            )
        )
    assert "PRIVATE KEY" not in str(caught.value)


def test_the_health_check_speaks_tls_with_the_servers_own_settings(
    secured_server: StartServer, pki: Pki, tmp_path: Path, capsys
):
    # One CA signs the server's certificate, which also allows client authentication here.
    dual = issue(
        pki.ca,
        "localhost",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
        server=True,
        client=True,
    )
    cert, key = dual.write(tmp_path, "dual")
    chain = tmp_path / "dual-chain.pem"
    chain.write_bytes(dual.cert + pki.ca.cert)
    settings = SecuritySettings(
        tls_cert_file=chain, tls_key_file=key, tls_client_ca_file=pki.path("ca.pem")
    )
    server = secured_server(settings)
    env = {
        "INCIDENTS_LISTEN_ADDRESS": f"0.0.0.0:{server.port}",
        "INCIDENTS_TLS_CERT_FILE": str(chain),
        "INCIDENTS_TLS_KEY_FILE": str(key),
        "INCIDENTS_TLS_CLIENT_CA_FILE": str(pki.path("ca.pem")),
    }
    assert healthcheck.main([], env) == 0, capsys.readouterr().err
    # Without the TLS settings it speaks plaintext, and fails.
    assert healthcheck.main([], {"INCIDENTS_LISTEN_ADDRESS": env["INCIDENTS_LISTEN_ADDRESS"]}) == 1
    # Explicit options: the CA file and a client certificate.
    client_cert, client_key = pki.path("client.pem"), pki.path("client-key.pem")
    args = ["--address", server.target, "--tls-ca", str(pki.path("ca.pem"))]
    assert (
        healthcheck.main([*args, "--tls-cert", str(client_cert), "--tls-key", str(client_key)], {})
        == 0
    )
    assert healthcheck.main(args, {}) == 1  # no client certificate: the handshake fails
    assert "unhealthy" in capsys.readouterr().err
    assert cert.exists()
