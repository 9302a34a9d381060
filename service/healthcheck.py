"""`incident-registry-health`: ask a registry server whether it is SERVING (grpc.health.v1).

Exits 0 when the server answers SERVING for the health service name asked (default
"readiness"), 1 otherwise — not serving, an unknown name, unreachable, a usage error — with
the reason on stderr. Made for container health checks (Docker's HEALTHCHECK reserves exit
code 2, so none is used). The address defaults to the server's own INCIDENTS_LISTEN_ADDRESS,
with a wildcard host (0.0.0.0, [::] or none) replaced by 127.0.0.1.

The check uses TLS when the server does (INCIDENTS_TLS_CERT_FILE is set) or when a --tls-*
option is given. By default it then trusts the server's own certificate file (a self-signed
certificate, or a chain that ends with its CA) and checks the certificate's first DNS name,
and — with mutual TLS (INCIDENTS_TLS_CLIENT_CA_FILE) — presents the server's certificate and
key as its client certificate, which works when the client CA signed them for client
authentication too. --tls-ca, --tls-cert, --tls-key and --server-name say otherwise. Health
needs no bearer token: grpc.health.v1 is open to every caller that completes the handshake.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2

DEFAULT_ADDRESS = "localhost:50051"
"""Where to connect when neither --address nor INCIDENTS_LISTEN_ADDRESS says."""

DEFAULT_SERVICE = "readiness"
"""The health service name asked by default: SERVING while the server can take calls."""

DEFAULT_TIMEOUT_SECONDS = 3.0
"""How long the check may take, connecting included."""

CHECK_METHOD = "/grpc.health.v1.Health/Check"

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})  # noqa: S104 - matched, not bound


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit 1, like every other failed check."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def connect_address(listen_address: str) -> str:
    """The address to connect to for a server listening on `listen_address` ("host:port").

    A wildcard host (0.0.0.0, [::], none at all) becomes 127.0.0.1; any other address,
    a unix socket included, is returned unchanged.
    """
    listen_address = listen_address.strip()
    if listen_address.startswith("unix:"):
        return listen_address
    host, separator, port = listen_address.rpartition(":")
    if not separator or (host.endswith(":") and not host.startswith("[")):
        # No port, or a bare IPv6 address such as "::1": nothing to map.
        return listen_address
    if host in _WILDCARD_HOSTS:
        return f"127.0.0.1:{port}"
    return listen_address


def default_address(env: Mapping[str, str]) -> str:
    """The address to check: derived from INCIDENTS_LISTEN_ADDRESS, else localhost:50051."""
    listen = env.get("INCIDENTS_LISTEN_ADDRESS", "").strip()
    return connect_address(listen) if listen else DEFAULT_ADDRESS


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def certificate_dns_name(path: Path) -> str | None:
    """The first DNS subject alternative name of the first certificate in a PEM file."""
    try:
        certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    dns_names = names.value.get_values_for_type(x509.DNSName)
    return dns_names[0] if dns_names else None


def channel_credentials(
    ca: Path | None, cert: Path | None, key: Path | None
) -> grpc.ChannelCredentials:
    """TLS credentials trusting `ca` (None: the system's roots), with a client certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes() if ca else None,
        certificate_chain=cert.read_bytes() if cert else None,
        private_key=key.read_bytes() if key else None,
    )


def check(
    address: str,
    service: str,
    timeout: float,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> health_pb2.HealthCheckResponse:
    """Ask the server at `address` for the health of `service`; raises grpc.RpcError.

    Plaintext without `credentials`; with them, TLS (checking the server's certificate for
    `server_name` when given, else for the address's host).
    """
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (
        grpc.insecure_channel(address)
        if credentials is None
        else grpc.secure_channel(address, credentials, options=options)
    )
    with channel:
        call = channel.unary_unary(
            CHECK_METHOD,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        response: health_pb2.HealthCheckResponse = call(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
        return response


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        msg = f"not a number of seconds: {raw!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not value > 0:
        msg = f"must be more than 0 seconds, not {raw!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="incident-registry-health",
        description="Check a registry server through grpc.health.v1: exit 0 when SERVING, "
        "1 otherwise.",
    )
    parser.add_argument(
        "--address",
        default=default_address(env),
        help="host:port of the server (default: from INCIDENTS_LISTEN_ADDRESS, a wildcard "
        f"host as 127.0.0.1; else {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--service",
        default=DEFAULT_SERVICE,
        help='health service name: "readiness" (default), "liveness", "" for the whole '
        "server, or a gRPC service's full name",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds the check may take (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    server_cert = _env_path(env, "INCIDENTS_TLS_CERT_FILE")
    mutual = _env_path(env, "INCIDENTS_TLS_CLIENT_CA_FILE") is not None
    parser.add_argument(
        "--tls-ca",
        type=Path,
        default=server_cert,
        help="TLS: PEM roots to trust (default: INCIDENTS_TLS_CERT_FILE, when set)",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=server_cert if mutual else None,
        help="mutual TLS: client certificate chain (default with INCIDENTS_TLS_CLIENT_CA_FILE: "
        "INCIDENTS_TLS_CERT_FILE)",
    )
    parser.add_argument(
        "--tls-key",
        type=Path,
        default=_env_path(env, "INCIDENTS_TLS_KEY_FILE") if mutual else None,
        help="mutual TLS: client private key (default with INCIDENTS_TLS_CLIENT_CA_FILE: "
        "INCIDENTS_TLS_KEY_FILE)",
    )
    parser.add_argument(
        "--server-name",
        default=None,
        help="TLS: the name to check the server's certificate for (default: the first DNS "
        "name of INCIDENTS_TLS_CERT_FILE's certificate, when that file is the roots)",
    )
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of `incident-registry-health`: 0 when SERVING, 1 otherwise."""
    env = os.environ if env is None else env
    args = _parser(env).parse_args(argv)
    address: str = args.address
    service: str = args.service
    timeout: float = args.timeout
    name = repr(service) if service else "the server"
    ca: Path | None = args.tls_ca
    cert: Path | None = args.tls_cert
    key: Path | None = args.tls_key
    server_name: str | None = args.server_name
    if (cert is None) != (key is None):
        print("usage error: give both --tls-cert and --tls-key, or neither", file=sys.stderr)  # noqa: T201
        return 1
    credentials = None
    if ca is not None or cert is not None:
        if (
            server_name is None
            and ca is not None
            and ca == _env_path(env, "INCIDENTS_TLS_CERT_FILE")
        ):
            server_name = certificate_dns_name(ca)
        try:
            credentials = channel_credentials(ca, cert, key)
        except OSError as err:
            print(f"unhealthy: cannot read a TLS file: {err}", file=sys.stderr)  # noqa: T201
            return 1
    try:
        response = check(address, service, timeout, credentials, server_name)
    except grpc.RpcError as err:
        # A failed call's exception is also its grpc.Call: it has the status code and details.
        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND:
            reason = "unknown health service name"
        else:
            reason = f"{code.name}: {err.details()}"
        print(f"unhealthy: {name} at {address}: {reason}", file=sys.stderr)  # noqa: T201
        return 1
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        print(f"unhealthy: {name} at {address} is {status}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
