"""Global options: TLS files reach the client, bad values are usage errors."""

from __future__ import annotations

from datetime import UTC

from incident_registry_client.cli.session import Settings

from tests.cli.conftest import invoke


def test_tls_options_are_passed_to_the_client(tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    ca.write_bytes(b"roots")
    cert.write_bytes(b"chain")
    key.write_bytes(b"key")
    settings = Settings(
        "registry.example:443", None, 5.0, False, UTC, ca, cert, key, "registry.example"
    )
    tls = settings.tls()
    assert tls is not None
    assert (tls.root_certificates, tls.certificate_chain, tls.private_key) == (
        b"roots",
        b"chain",
        b"key",
    )
    assert tls.server_name_override == "registry.example"
    with settings.client() as registry:
        assert registry.secure
    plain = Settings("localhost:50051", "ops", 5.0, False, UTC)
    assert plain.tls() is None
    with plain.client() as registry:
        assert not registry.secure


def test_bad_global_options_are_usage_errors(tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(b"key")
    assert "--cert" in invoke("localhost:1", "--key", str(key), "verify", code=2).output
    assert "ca.pem" in invoke("localhost:1", "--ca", "ca.pem", "verify", code=2).output
    assert "Mars/Olympus" in invoke("localhost:1", "--tz", "Mars/Olympus", "verify", code=2).output
