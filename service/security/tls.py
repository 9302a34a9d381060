"""The server's transport credentials: TLS, or mutual TLS with required client certificates.

The files are read and parsed once, at start-up, so that a wrong path, a key that does not
match the certificate or an encrypted key stops the server with a clear message (naming the
setting and the path, never the file's contents) instead of failing every handshake.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from service.security.settings import SecurityConfigError, SecuritySettings


def read_setting_file(path: Path, setting: str) -> bytes:
    """The bytes of the file a setting names; SecurityConfigError if unreadable (no contents)."""
    try:
        return path.read_bytes()
    except OSError as err:
        msg = f"{setting}: cannot read {path}: {err.strerror or err}"
        raise SecurityConfigError(msg) from None


def _certificates(pem: bytes, path: Path, setting: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        msg = f"{setting}: {path} holds no PEM certificate"
        raise SecurityConfigError(msg) from None


def _public_der(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    der: bytes = public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def server_credentials(settings: SecuritySettings) -> grpc.ServerCredentials | None:
    """TLS credentials from INCIDENTS_TLS_*, None when no certificate is configured.

    With INCIDENTS_TLS_CLIENT_CA_FILE, clients must present a certificate that this CA
    signed (`require_client_auth`): the handshake fails otherwise.
    """
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    chain = read_setting_file(settings.tls_cert_file, "INCIDENTS_TLS_CERT_FILE")
    key_pem = read_setting_file(settings.tls_key_file, "INCIDENTS_TLS_KEY_FILE")
    leaf = _certificates(chain, settings.tls_cert_file, "INCIDENTS_TLS_CERT_FILE")[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        msg = (
            f"INCIDENTS_TLS_KEY_FILE: {settings.tls_key_file} is not an unencrypted PEM private key"
        )
        raise SecurityConfigError(msg) from None
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        msg = (
            f"INCIDENTS_TLS_KEY_FILE: {settings.tls_key_file} is not the key of the certificate "
            f"in {settings.tls_cert_file}"
        )
        raise SecurityConfigError(msg)
    client_ca: bytes | None = None
    if settings.tls_client_ca_file is not None:
        client_ca = read_setting_file(settings.tls_client_ca_file, "INCIDENTS_TLS_CLIENT_CA_FILE")
        _certificates(client_ca, settings.tls_client_ca_file, "INCIDENTS_TLS_CLIENT_CA_FILE")
    return grpc.ssl_server_credentials(
        [(key_pem, chain)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
