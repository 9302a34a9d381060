"""What every command shares: the global options, the client they open, output and errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from incident_registry_client import RegistryClient, TlsOptions
from incident_registry_client.cli.render import jsonable
from incident_registry_client.errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    RegistryError,
    UnauthenticatedError,
    UnavailableError,
)

# Exit codes, also listed in the README.
OK = 0
FAILED = 1
"""A check failed (verify), or an unexpected error."""
USAGE = 2
"""Bad options or input files, before anything was sent (typer uses 2 for usage errors too)."""
NOT_FOUND = 3
REFUSED = 4
"""The registry refused the request: invalid, a broken rule, a conflict, a reused request id."""
UNREACHABLE = 5
"""The registry could not be reached, or did not answer in time."""
DENIED = 6
"""The registry did not let the caller in: no, an invalid or an expired token or certificate
(UNAUTHENTICATED), or an identity without a role allowing the call (PERMISSION_DENIED)."""
INTERRUPTED = 130
"""Stopped by Ctrl-C (after finishing or abandoning the batch in hand)."""


@dataclass(frozen=True)
class Settings:
    """The global options, read once by the app's callback."""

    target: str
    actor: str | None
    timeout: float
    json: bool
    timezone: tzinfo
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    insecure: bool = False
    progress: bool = True
    token: str | None = None
    """A bearer token (--token, INCIDENTS_TOKEN)."""
    token_file: Path | None = None
    """A file holding the bearer token (--token-file, INCIDENTS_TOKEN_FILE), read per call."""

    def bearer_token(self) -> str | Callable[[], str] | None:
        """The token to send: --token, else a reader of --token-file (re-read for every
        call, so that a rotated token is picked up), else None."""
        if self.token:
            return self.token
        path = self.token_file
        if path is None:
            return None
        return lambda: path.read_text(encoding="utf-8").strip()

    def tls(self) -> TlsOptions | None:
        """TLS options from --ca/--cert/--key/--server-name; None when none was given."""
        if not (self.ca or self.cert or self.key or self.server_name):
            return None
        return TlsOptions(
            root_certificates=self.ca.read_bytes() if self.ca else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
            private_key=self.key.read_bytes() if self.key else None,
            server_name_override=self.server_name,
        )

    def client(self, *, target: str | None = None) -> RegistryClient:
        """A client of `target` (default --target) with the actor, deadline and TLS options."""
        return RegistryClient(
            target or self.target,
            tls=self.tls(),
            insecure=self.insecure,
            bearer_token=self.bearer_token(),
            actor=self.actor,
            timeout=self.timeout,
        )


class Output:
    """Where a command writes: tables and messages for people, or JSON with --json."""

    def __init__(self, settings: Settings) -> None:
        self.json = settings.json
        self.console = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def emit(self, data: Any, show: Callable[[Console], None]) -> None:
        """Print `data` as one JSON document with --json, else call `show` with the console."""
        if self.json:
            self.json_line(data)
        else:
            show(self.console)

    def json_line(self, data: Any) -> None:
        """Print `data` as one line of JSON."""
        sys.stdout.write(json.dumps(jsonable(data), ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def note(self, message: str) -> None:
        """A message for people (on stderr, so that stdout stays data)."""
        self.err.print(message, markup=False)


def settings_of(ctx: typer.Context) -> Settings:
    """The global options of this invocation."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings), "the app callback sets the settings"
    return settings


def exit_code(error: RegistryError) -> int:
    """The exit code of a failed call."""
    if isinstance(error, NotFoundError):
        return NOT_FOUND
    refused = (
        InvalidArgumentError,
        FailedPreconditionError,
        AbortedError,
        AlreadyExistsError,
        OutOfRangeError,
    )
    if isinstance(error, refused):
        return REFUSED
    if isinstance(error, UnavailableError | DeadlineExceededError):
        return UNREACHABLE
    if isinstance(error, UnauthenticatedError | PermissionDeniedError):
        return DENIED
    return FAILED


def describe(error: RegistryError) -> str:
    """What went wrong, with what the server's details say, for people."""
    lines = [f"error: {error.code.name}: {error.message}"]
    if isinstance(error, InvalidArgumentError):
        lines += [f"  {v.field}: {v.description}" for v in error.field_violations]
    elif isinstance(error, FailedPreconditionError):
        lines += [f"  rule {v.type} ({v.subject}): {v.description}" for v in error.violations]
    elif isinstance(error, NotFoundError) and error.resource_type:
        lines.append(f"  no {error.resource_type} {error.resource_name}")
    elif isinstance(error, AlreadyExistsError) and error.request_id:
        lines.append(f"  request id {error.request_id} was used for another request")
    elif isinstance(error, UnavailableError | DeadlineExceededError):
        lines.append("  is the registry running there? (--target, INCIDENTS_TARGET)")
    elif isinstance(error, UnauthenticatedError):
        lines.append("  give a valid token (--token, --token-file) or client certificate")
    return "\n".join(lines)


def fail(out: Output, message: str, code: int = USAGE) -> NoReturn:
    """Print an error message and exit with `code`."""
    out.err.print(message, markup=False)
    raise typer.Exit(code)


@contextmanager
def handled(out: Output) -> Iterator[None]:
    """Turn a failed call into a message on stderr and its exit code."""
    try:
        yield
    except RegistryError as err:
        fail(out, describe(err), exit_code(err))
    except ValueError as err:  # the client's own checks, before any call
        fail(out, f"error: {err}", USAGE)


@contextmanager
def session(
    ctx: typer.Context, *, default_actor: str | None = None
) -> Iterator[tuple[RegistryClient, Output]]:
    """A client of the registry and the output, with failures turned into exit codes.

    `default_actor` is sent as x-actor when --actor was not given.
    """
    settings = settings_of(ctx)
    if settings.actor is None and default_actor is not None:
        settings = replace(settings, actor=default_actor)
    out = Output(settings)
    with handled(out), settings.client() as registry:
        yield registry, out
