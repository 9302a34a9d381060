"""How a client reaches the registry: TLS or plaintext, credentials, and per-call metadata.

Transport security is decided once, when the client is made:

- `tls=TlsOptions(...)` uses TLS with those certificates (mutual TLS when a certificate chain
  and private key are given);
- `insecure=True` uses plaintext, to any host: the caller asked for it explicitly;
- otherwise plaintext is used only for a loopback target (localhost, 127.0.0.0/8, ::1, a
  unix socket), which is what the registry serves today, and TLS with the system's root
  certificates for any other host, so that a remote target is never reached in clear text by
  accident.

Credentials are only sent where they cannot be read on the way: `call_credentials` need TLS
(gRPC enforces it), and a bearer token is refused on plaintext to a non-loopback host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

ChannelOptions = Sequence[tuple[str, Any]]

DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    # Reconnect soon after a server restart, so that retries find it back (gRPC's own
    # default waits a second, then backs off to two minutes).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


@dataclass(frozen=True, kw_only=True)
class TlsOptions:
    """TLS settings: PEM-encoded roots (None: the system's), optional client certificate.

    `server_name_override` checks the server's certificate against this name instead of the
    target's host (for tests and for servers reached by IP address).
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name_override: str | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            msg = "a client certificate needs both certificate_chain and private_key"
            raise ValueError(msg)


def target_host(target: str) -> str:
    """The host of a gRPC target ("host:port", "[v6]:port", "dns:///host:port", ...)."""
    rest = target
    for scheme in ("dns:", "ipv4:", "ipv6:"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :].lstrip("/")
            # dns://authority/host:port: drop the DNS server's authority.
            if scheme == "dns:" and target.startswith("dns://") and "/" in rest:
                rest = rest.split("/", 1)[1]
            break
    if rest.startswith("["):
        return rest[1 : rest.find("]")]
    if rest.count(":") > 1:  # a bare IPv6 address without a port
        return rest
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def is_loopback(target: str) -> bool:
    """Whether `target` names this machine: localhost, a loopback address or a unix socket."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target_host(target).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


TokenSource = str | Callable[[], str]


@dataclass(frozen=True)
class ChannelConfig:
    """What every channel of one client is opened with, decided once."""

    target: str
    credentials: grpc.ChannelCredentials | None
    options: tuple[tuple[str, Any], ...]

    def open(self) -> grpc.Channel:
        """A new synchronous channel."""
        if self.credentials is None:
            return grpc.insecure_channel(self.target, options=self.options)
        return grpc.secure_channel(self.target, self.credentials, options=self.options)

    def open_aio(self) -> grpc.aio.Channel:
        """A new grpc.aio channel (open it inside the event loop that uses it)."""
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, options=self.options)
        return grpc.aio.secure_channel(self.target, self.credentials, options=self.options)


def channel_config(
    target: str,
    *,
    tls: TlsOptions | None,
    insecure: bool,
    call_credentials: grpc.CallCredentials | None,
    bearer_token: TokenSource | None,
    options: ChannelOptions,
) -> ChannelConfig:
    """Decide transport security for `target` (see the module docstring)."""
    if tls is not None and insecure:
        msg = "give either tls=TlsOptions(...) or insecure=True, not both"
        raise ValueError(msg)
    local = is_loopback(target)
    plaintext = insecure or (tls is None and local)
    if plaintext and call_credentials is not None:
        msg = "call_credentials need TLS: pass tls=TlsOptions(...)"
        raise ValueError(msg)
    if plaintext and bearer_token is not None and not local:
        msg = f"refusing to send a bearer token in clear text to {target}: use TLS"
        raise ValueError(msg)
    merged = (*DEFAULT_OPTIONS, *options)
    if plaintext:
        return ChannelConfig(target, None, merged)
    tls = tls or TlsOptions()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates,
        private_key=tls.private_key,
        certificate_chain=tls.certificate_chain,
    )
    if call_credentials is not None:
        credentials = grpc.composite_channel_credentials(credentials, call_credentials)
    if tls.server_name_override:
        merged = (*merged, ("grpc.ssl_target_name_override", tls.server_name_override))
    return ChannelConfig(target, credentials, merged)


@dataclass(frozen=True)
class CallMetadata:
    """The metadata sent with every call: actor, bearer token, and any extra headers."""

    actor: str | None = None
    bearer_token: TokenSource | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The headers of one call (a token source is asked again for every call)."""
        pairs = list(self.extra)
        if self.actor:
            pairs.append(("x-actor", self.actor))
        if self.bearer_token is not None:
            token = self.bearer_token() if callable(self.bearer_token) else self.bearer_token
            pairs.append(("authorization", f"Bearer {token}"))
        return tuple(pairs)
