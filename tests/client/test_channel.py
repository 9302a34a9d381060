"""Transport security and call metadata: TLS, mutual TLS, tokens, actor and headers."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from incident_registry_client import NO_RETRY, RegistryClient, TlsOptions, UnavailableError
from incident_registry_client._channel import is_loopback, target_host

from tests.client.proxy import FaultProxy

SERVER_NAME = "registry.test"


@dataclass(frozen=True)
class Certificates:
    ca: bytes
    server_chain: bytes
    server_key: bytes
    client_chain: bytes
    client_key: bytes


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(name: str, common_name: str, cwd: Path) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}",
        cwd=cwd,
    )  # fmt: skip
    (cwd / f"{name}.ext").write_text(f"subjectAltName=DNS:{common_name}\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> Certificates:
    """A throwaway CA, a server certificate for registry.test and a client certificate."""
    folder = Path(tmp_path_factory.mktemp("pki"))
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Test CA",
        cwd=folder,
    )  # fmt: skip
    _issue("server", SERVER_NAME, folder)
    _issue("client", "analyst-7", folder)

    def read(name: str) -> bytes:
        return (folder / name).read_bytes()

    return Certificates(
        read("ca.pem"),
        read("server.pem"),
        read("server.key"),
        read("client.pem"),
        read("client.key"),
    )


@pytest.fixture
def tls_proxy(server, certificates):
    credentials = grpc.ssl_server_credentials(
        [(certificates.server_key, certificates.server_chain)]
    )
    proxy = FaultProxy(server.target, server_credentials=credentials)
    yield proxy
    proxy.stop()


@pytest.fixture
def mtls_proxy(server, certificates):
    credentials = grpc.ssl_server_credentials(
        [(certificates.server_key, certificates.server_chain)],
        root_certificates=certificates.ca,
        require_client_auth=True,
    )
    proxy = FaultProxy(server.target, server_credentials=credentials)
    yield proxy
    proxy.stop()


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("localhost:50051", "localhost"),
        ("127.0.0.1:50051", "127.0.0.1"),
        ("[::1]:50051", "::1"),
        ("dns:///registry.example:443", "registry.example"),
        ("dns://8.8.8.8/registry.example:443", "registry.example"),
        ("ipv4:10.0.0.5:50051", "10.0.0.5"),
        ("registry.example", "registry.example"),
    ],
)
def test_target_hosts(target, host):
    assert target_host(target) == host


@pytest.mark.parametrize(
    ("target", "local"),
    [
        ("localhost:50051", True),
        ("127.0.0.1:50051", True),
        ("127.8.9.10:1", True),
        ("[::1]:50051", True),
        ("unix:/run/registry.sock", True),
        ("registry.example:443", False),
        ("10.0.0.5:50051", False),
        ("localhost.example.com:1", False),
    ],
)
def test_loopback_targets(target, local):
    assert is_loopback(target) is local


def test_plaintext_only_for_loopback_unless_asked():
    with RegistryClient("localhost:50051") as local:
        assert not local.secure
    with RegistryClient("registry.example:443") as remote:
        assert remote.secure  # TLS with the system's roots
    with RegistryClient("registry.example:50051", insecure=True) as asked:
        assert not asked.secure
    with RegistryClient("localhost:50051", tls=TlsOptions()) as local_tls:
        assert local_tls.secure


def test_credentials_are_never_sent_in_clear_to_another_host():
    with pytest.raises(ValueError, match="either tls"):
        RegistryClient("registry.example:443", tls=TlsOptions(), insecure=True)
    with pytest.raises(ValueError, match="clear text"):
        RegistryClient("registry.example:50051", insecure=True, bearer_token="secret")
    with pytest.raises(ValueError, match="need TLS"):
        RegistryClient(
            "localhost:50051", call_credentials=grpc.access_token_call_credentials("secret")
        )
    with pytest.raises(ValueError, match="both certificate_chain and private_key"):
        TlsOptions(certificate_chain=b"chain")
    with RegistryClient("localhost:50051", bearer_token="local") as local:
        assert not local.secure


def test_tls_with_the_registry_roots_and_a_name_override(tls_proxy, certificates):
    tls = TlsOptions(root_certificates=certificates.ca, server_name_override=SERVER_NAME)
    with RegistryClient(tls_proxy.target, tls=tls) as registry:
        assert registry.secure
        assert registry.get_head().position == 0


def test_tls_refuses_a_server_it_does_not_trust(tls_proxy):
    tls = TlsOptions(server_name_override=SERVER_NAME)  # the system's roots
    with (
        RegistryClient(tls_proxy.target, tls=tls, retry=NO_RETRY, timeout=5) as registry,
        pytest.raises(UnavailableError),
    ):
        registry.get_head()
    assert tls_proxy.calls == []


def test_mutual_tls_sends_the_client_certificate(mtls_proxy, certificates):
    tls = TlsOptions(
        root_certificates=certificates.ca,
        certificate_chain=certificates.client_chain,
        private_key=certificates.client_key,
        server_name_override=SERVER_NAME,
    )
    with RegistryClient(mtls_proxy.target, tls=tls) as registry:
        assert registry.get_head().position == 0
    anonymous = TlsOptions(root_certificates=certificates.ca, server_name_override=SERVER_NAME)
    with (
        RegistryClient(mtls_proxy.target, tls=anonymous, retry=NO_RETRY) as registry,
        pytest.raises(UnavailableError),
    ):
        registry.get_head()


def test_a_bearer_token_source_is_asked_for_every_call(tls_proxy, certificates):
    tokens = iter(["first", "second"])
    tls = TlsOptions(root_certificates=certificates.ca, server_name_override=SERVER_NAME)
    with RegistryClient(tls_proxy.target, tls=tls, bearer_token=lambda: next(tokens)) as registry:
        registry.get_head()
        registry.get_head()
    sent = [call.metadata["authorization"] for call in tls_proxy.calls_of("GetHead")]
    assert sent == ["Bearer first", "Bearer second"]


def test_call_credentials_travel_over_tls(tls_proxy, certificates):
    tls = TlsOptions(root_certificates=certificates.ca, server_name_override=SERVER_NAME)
    credentials = grpc.access_token_call_credentials("from-the-plugin")
    with RegistryClient(tls_proxy.target, tls=tls, call_credentials=credentials) as registry:
        registry.get_head()
    (call,) = tls_proxy.calls_of("GetHead")
    assert call.metadata["authorization"] == "Bearer from-the-plugin"


def test_actor_and_extra_metadata_go_with_every_call(proxy, client):
    with RegistryClient(
        proxy.target, actor="investigator-7", metadata=[("x-correlation-id", "case-42")]
    ) as registry:
        registry.register_gang(name="Clan X")
    (call,) = proxy.calls_of("RegisterGang")
    assert call.metadata["x-actor"] == "investigator-7"
    assert call.metadata["x-correlation-id"] == "case-42"
    (event,) = client.read_all().events
    assert (event.metadata.actor, event.metadata.correlation_id) == ("investigator-7", "case-42")


def test_the_default_deadline_is_checked():
    with pytest.raises(ValueError, match="positive"):
        RegistryClient("localhost:50051", timeout=0)
