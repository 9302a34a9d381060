"""`audit`: who recorded what, when — the audit trail of the log, newest first."""

from __future__ import annotations

from itertools import islice
from typing import Annotated
from uuid import UUID

import typer

from incident_registry_client.cli import parsing
from incident_registry_client.cli.render import rows_table
from incident_registry_client.cli.session import session, settings_of

MAX_PAGE_SIZE = 1000
"""The most entries the registry returns in one page."""


def audit(
    ctx: typer.Context,
    *,
    actor: Annotated[
        str | None, typer.Option(help="Only the events recorded by exactly this actor.")
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only events of this type (ShootingReported…); repeatable."),
    ] = None,
    stream: Annotated[
        UUID | None, typer.Option(help="Only the events of this aggregate (its id).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Recorded at or after this time (inclusive).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Recorded before this time (exclusive).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 50,
    min_position: Annotated[
        int, typer.Option(help="Wait until the audit trail includes this log position.")
    ] = 0,
    json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table (as the global option).")
    ] = False,
) -> None:
    """Who recorded which event, when and in which request: the log's audit trail, newest first.

    Needs the operator (or admin) role where the registry authenticates its callers.
    """
    tz = settings_of(ctx).timezone
    recorded_from = parsing.optional_when(since, tz)
    recorded_to = parsing.optional_when(until, tz)
    with session(ctx) as (registry, out):
        out.json = out.json or json
        found = list(
            islice(
                registry.iter_audit_entries(
                    actor=actor or "",
                    event_types=event_type or (),
                    stream_id=stream,
                    recorded_from=recorded_from,
                    recorded_to=recorded_to,
                    page_size=min(limit, MAX_PAGE_SIZE),
                    min_position=min_position,
                ),
                limit,
            )
        )
        columns = [
            "position",
            "recorded at",
            "actor",
            "event",
            "stream",
            "stream id",
            "request id",
            "correlation",
        ]
        rows = [
            (
                e.position,
                e.recorded_at,
                e.actor or "—",
                e.event_type,
                f"{e.stream_type} v{e.stream_version}",
                e.stream_id,
                e.request_id,
                # Shown where it ties the request to others: it is the request id otherwise.
                "—" if e.correlation_id in ("", e.request_id) else e.correlation_id,
            )
            for e in found
        ]
        title = f"{len(found)} audit entries"
        out.emit(found, lambda c: c.print(rows_table(title, columns, rows)))


def register(app: typer.Typer) -> None:
    """Add `audit` to `app`."""
    app.command("audit", rich_help_panel="Reads")(audit)
