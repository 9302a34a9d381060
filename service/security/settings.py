"""The security settings (INCIDENTS_TLS_*, INCIDENTS_AUTH*, INCIDENTS_ALLOW_PLAINTEXT).

`security_from_env` reads and checks them on their own; `check_exposure` then decides whether
they are safe for the listen address: a server that is reachable from other machines must
either use TLS or say INCIDENTS_ALLOW_PLAINTEXT=true (TLS terminated in front of it), and
must say which authentication it uses (INCIDENTS_AUTH, `none` included). Only a loopback
address — the local development default — may be served in plaintext without authentication
by default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

AUTH_MODES = ("none", "tokens", "jwt", "certificates")
"""Values of INCIDENTS_AUTH."""


class SecurityConfigError(ValueError):
    """Raised when the security settings are invalid or unsafe for the listen address."""


@dataclass(frozen=True)
class SecuritySettings:
    """TLS and authentication settings; see the README's Security section."""

    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    allow_plaintext: bool = False
    auth: str | None = None
    """INCIDENTS_AUTH, None when it is not set (then no authentication, like `none`)."""
    auth_tokens_file: Path | None = None
    auth_jwt_secret_file: Path | None = None
    auth_jwt_public_key_file: Path | None = None
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None
    auth_cert_roles_file: Path | None = None

    @property
    def tls(self) -> bool:
        """Whether the server uses TLS."""
        return self.tls_cert_file is not None

    @property
    def mutual_tls(self) -> bool:
        """Whether clients must present a certificate signed by the client CA."""
        return self.tls_client_ca_file is not None

    @property
    def auth_mode(self) -> str:
        """The authentication in force: one of AUTH_MODES."""
        return self.auth or "none"


@dataclass(frozen=True)
class Exposure:
    """How a server will be reached: its transport, and why plaintext is allowed if it is."""

    transport: str
    """`tls`, `mtls` or `plaintext`."""
    plaintext_reason: str | None = None
    """`loopback address` or `INCIDENTS_ALLOW_PLAINTEXT=true` for plaintext, else None."""


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def _text(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return raw or None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    msg = f"{name} must be true or false, not {raw!r}"
    raise SecurityConfigError(msg)


def security_from_env(env: Mapping[str, str]) -> SecuritySettings:
    """Read the security settings from `env`, checking that they are consistent."""
    auth = _text(env, "INCIDENTS_AUTH")
    if auth is not None:
        auth = auth.lower()
        if auth not in AUTH_MODES:
            msg = f"INCIDENTS_AUTH must be one of {', '.join(AUTH_MODES)}, not {auth!r}"
            raise SecurityConfigError(msg)
    settings = SecuritySettings(
        tls_cert_file=_path(env, "INCIDENTS_TLS_CERT_FILE"),
        tls_key_file=_path(env, "INCIDENTS_TLS_KEY_FILE"),
        tls_client_ca_file=_path(env, "INCIDENTS_TLS_CLIENT_CA_FILE"),
        allow_plaintext=_flag(env, "INCIDENTS_ALLOW_PLAINTEXT"),
        auth=auth,
        auth_tokens_file=_path(env, "INCIDENTS_AUTH_TOKENS_FILE"),
        auth_jwt_secret_file=_path(env, "INCIDENTS_AUTH_JWT_SECRET_FILE"),
        auth_jwt_public_key_file=_path(env, "INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE"),
        auth_jwt_issuer=_text(env, "INCIDENTS_AUTH_JWT_ISSUER"),
        auth_jwt_audience=_text(env, "INCIDENTS_AUTH_JWT_AUDIENCE"),
        auth_cert_roles_file=_path(env, "INCIDENTS_AUTH_CERT_ROLES_FILE"),
    )
    _check(settings)
    return settings


def _check(s: SecuritySettings) -> None:
    problems: list[str] = []
    if (s.tls_cert_file is None) != (s.tls_key_file is None):
        problems.append("set both INCIDENTS_TLS_CERT_FILE and INCIDENTS_TLS_KEY_FILE, or neither")
    if s.tls_client_ca_file is not None and s.tls_cert_file is None:
        problems.append("INCIDENTS_TLS_CLIENT_CA_FILE (mutual TLS) needs INCIDENTS_TLS_CERT_FILE")
    mode = s.auth_mode
    if mode == "tokens" and s.auth_tokens_file is None:
        problems.append("INCIDENTS_AUTH=tokens needs INCIDENTS_AUTH_TOKENS_FILE")
    if s.auth_tokens_file is not None and mode != "tokens":
        problems.append("INCIDENTS_AUTH_TOKENS_FILE is set but INCIDENTS_AUTH is not 'tokens'")
    jwt_keys = [s.auth_jwt_secret_file, s.auth_jwt_public_key_file]
    if mode == "jwt" and sum(key is not None for key in jwt_keys) != 1:
        problems.append(
            "INCIDENTS_AUTH=jwt needs exactly one of INCIDENTS_AUTH_JWT_SECRET_FILE (HS256) "
            "and INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256)"
        )
    if mode != "jwt" and (
        any(key is not None for key in jwt_keys) or s.auth_jwt_issuer or s.auth_jwt_audience
    ):
        problems.append("INCIDENTS_AUTH_JWT_* settings are set but INCIDENTS_AUTH is not 'jwt'")
    if mode == "certificates" and s.auth_cert_roles_file is None:
        problems.append("INCIDENTS_AUTH=certificates needs INCIDENTS_AUTH_CERT_ROLES_FILE")
    if s.auth_cert_roles_file is not None:
        if s.tls_client_ca_file is None:
            problems.append(
                "INCIDENTS_AUTH_CERT_ROLES_FILE needs mutual TLS (INCIDENTS_TLS_CLIENT_CA_FILE)"
            )
        if mode == "none":
            problems.append("INCIDENTS_AUTH_CERT_ROLES_FILE is set but INCIDENTS_AUTH is 'none'")
    if problems:
        raise SecurityConfigError("; ".join(problems))


def is_loopback_address(listen_address: str) -> bool:
    """Whether a listen address ("host:port") can only be reached from this machine."""
    address = listen_address.strip()
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host, separator, _ = address.rpartition(":")
    if not separator:
        host = address
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(listen_address: str, s: SecuritySettings) -> Exposure:
    """How a server on `listen_address` is reached; SecurityConfigError when that is unsafe.

    Plaintext needs a loopback address or INCIDENTS_ALLOW_PLAINTEXT=true; a non-loopback
    address needs INCIDENTS_AUTH to be set explicitly (`none` too, where something in front of
    the server authenticates callers).
    """
    loopback = is_loopback_address(listen_address)
    if s.tls:
        exposure = Exposure("mtls" if s.mutual_tls else "tls")
    elif loopback:
        exposure = Exposure("plaintext", "loopback address")
    elif s.allow_plaintext:
        exposure = Exposure("plaintext", "INCIDENTS_ALLOW_PLAINTEXT=true")
    else:
        msg = (
            f"refusing to serve {listen_address} in plaintext: set INCIDENTS_TLS_CERT_FILE and "
            "INCIDENTS_TLS_KEY_FILE, listen on a loopback address, or set "
            "INCIDENTS_ALLOW_PLAINTEXT=true where TLS is terminated in front of the server"
        )
        raise SecurityConfigError(msg)
    if s.auth is None and not loopback:
        msg = (
            f"INCIDENTS_AUTH must be set for {listen_address}, which other machines can reach: "
            "tokens, jwt, certificates, or none (when something in front authenticates callers)"
        )
        raise SecurityConfigError(msg)
    return exposure
