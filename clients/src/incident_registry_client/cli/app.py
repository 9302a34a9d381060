"""`incidents`: the operator command of the Incident Registry.

    incidents --target registry.example:50051 --actor ops-1 stats areas --period month

Global options come before the command; each can also be set by an environment variable
(INCIDENTS_TARGET, INCIDENTS_ACTOR, INCIDENTS_TIMEOUT, INCIDENTS_TZ, INCIDENTS_TOKEN,
INCIDENTS_TOKEN_FILE).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from incident_registry_client.cli import (
    audit,
    demo,
    log,
    parsing,
    projections,
    reads,
    stats,
    writes,
    writes_operations,
)
from incident_registry_client.cli.session import Settings

app = typer.Typer(
    name="incidents",
    help="Operate an Incident Registry: writes, tables, the log, read models, a demo.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def options(
    ctx: typer.Context,
    *,
    target: Annotated[
        str, typer.Option(envvar="INCIDENTS_TARGET", help="The registry, host:port.")
    ] = "localhost:50051",
    actor: Annotated[
        str | None,
        typer.Option(envvar="INCIDENTS_ACTOR", help="Sent as x-actor, recorded with each event."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(envvar="INCIDENTS_TIMEOUT", help="Seconds each call may take.")
    ] = 10.0,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    tz: Annotated[
        str,
        typer.Option(envvar="INCIDENTS_TZ", help="Time zone of times given without an offset."),
    ] = "UTC",
    ca: Annotated[
        Path | None, typer.Option(help="TLS: PEM root certificates.", exists=True, dir_okay=False)
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option(help="TLS: client certificate chain (PEM).", exists=True, dir_okay=False),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="TLS: client private key (PEM).", exists=True, dir_okay=False),
    ] = None,
    server_name: Annotated[
        str | None, typer.Option(help="TLS: check the server's certificate for this name.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Plaintext even to a remote host (never with TLS options).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars on long operations.")] = True,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="INCIDENTS_TOKEN",
            help="Bearer token (prefer INCIDENTS_TOKEN or --token-file: a command line is "
            "visible to other users).",
            show_default=False,
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="INCIDENTS_TOKEN_FILE",
            help="File holding the bearer token.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Operate an Incident Registry: writes, tables, the log, read models, a demo."""
    if (cert is None) != (key is None):
        raise typer.BadParameter("give both --cert and --key, or neither")
    if token and token_file is not None:
        raise typer.BadParameter("give --token or --token-file, not both")
    ctx.obj = Settings(
        target=target,
        actor=actor,
        timeout=timeout,
        json=json,
        timezone=parsing.zone(tz),
        ca=ca,
        cert=cert,
        key=key,
        server_name=server_name,
        insecure=insecure,
        progress=progress and not json,
        token=token,
        token_file=token_file,
    )


for module in (writes, writes_operations, reads, audit, stats, log, projections, demo):
    module.register(app)


def main() -> None:
    """The console script's entry point."""
    app()
