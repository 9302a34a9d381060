"""Reads as tables: `get` one aggregate with its history, `list` incidents, waves, commands."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from incident_registry_client import (
    Aggregate,
    AreaKind,
    IncidentAttributionStatus,
    RecordedEvent,
    WeaponKind,
)
from incident_registry_client.cli import parsing
from incident_registry_client.cli.render import fields_table, rows_table, text
from incident_registry_client.cli.session import Output, session, settings_of

get_app = typer.Typer(help="Show one incident, gang, unified command or asset case.")
list_app = typer.Typer(help="List incidents, waves, unified commands, municipalities.")

History = Annotated[bool, typer.Option(help="Also show the event history.")]
Limit = Annotated[int, typer.Option(help="At most this many rows.")]
MinPosition = Annotated[
    int, typer.Option(help="Wait until the read model includes this log position.")
]
Codes = Annotated[list[str] | None, typer.Option(help="Repeatable.")]


def show_aggregate(out: Output, title: str, found: Aggregate[Any], history: bool) -> None:
    """An aggregate's state as a table (and its history); as JSON, both or the state only."""

    def show(console: Console) -> None:
        console.print(fields_table(title, found.state))
        if history:
            console.print(history_table(found.history))

    out.emit(found if history else found.state, show)


def history_table(events: tuple[RecordedEvent, ...]) -> Table:
    """An aggregate's events, oldest first."""
    return rows_table(
        "history",
        ["version", "position", "event", "occurred at", "recorded at", "actor"],
        [
            (
                e.stream_version,
                e.position,
                e.event_type,
                e.occurred_at,
                e.recorded_at,
                e.metadata.actor,
            )
            for e in events
        ],
    )


@get_app.command("incident")
def get_incident(ctx: typer.Context, incident_id: UUID, history: History = True) -> None:
    """An incident's current state and history."""
    with session(ctx) as (registry, out):
        found = registry.get_incident(incident_id=incident_id)
        show_aggregate(out, f"incident {incident_id}", found, history)


@get_app.command("gang")
def get_gang(ctx: typer.Context, gang_id: UUID, history: History = True) -> None:
    """A gang, its aliases and territory."""
    with session(ctx) as (registry, out):
        found = registry.get_gang(gang_id=gang_id)
        show_aggregate(out, f"gang {gang_id}", found, history)


@get_app.command("command")
def get_command(ctx: typer.Context, command_id: UUID, history: History = True) -> None:
    """A unified police command."""
    with session(ctx) as (registry, out):
        found = registry.get_unified_command(command_id=command_id)
        show_aggregate(out, f"unified command {command_id}", found, history)


@get_app.command("case")
def get_case(ctx: typer.Context, case_id: UUID, history: History = True) -> None:
    """An asset recovery case: seizures, court decisions, reinvestments."""
    with session(ctx) as (registry, out):
        found = registry.get_asset_case(case_id=case_id)
        show_aggregate(out, f"asset case {case_id}", found, history)


@list_app.command("incidents")
def list_incidents(
    ctx: typer.Context,
    *,
    municipality: Codes = None,
    zone: Codes = None,
    since: Annotated[str | None, typer.Option("--from", help="Occurred at or after.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Occurred before.")] = None,
    gang: Annotated[list[UUID] | None, typer.Option(help="Attributed to, repeatable.")] = None,
    weapon_kind: Annotated[list[WeaponKind] | None, typer.Option(help="Repeatable.")] = None,
    status: Annotated[
        list[IncidentAttributionStatus] | None, typer.Option(help="Repeatable.")
    ] = None,
    min_killed: int = 0,
    min_injured: int = 0,
    query: Annotated[str, typer.Option(help="Words in the description or address.")] = "",
    limit: Limit = 50,
    min_position: MinPosition = 0,
) -> None:
    """Incidents, newest first, from the incidents read model."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        found = list(
            islice(
                registry.iter_incidents(
                    municipality_codes=municipality or (),
                    police_zone_codes=zone or (),
                    occurred_from=parsing.optional_when(since, tz),
                    occurred_to=parsing.optional_when(until, tz),
                    gang_ids=gang or (),
                    weapon_kinds=weapon_kind or (),
                    min_killed=min_killed,
                    min_injured=min_injured,
                    attribution_statuses=status or (),
                    query=query,
                    page_size=min(limit, 500),
                    min_position=min_position,
                ),
                limit,
            )
        )
        columns = ["day", "hour", "municipality", "killed", "injured", "weapons", "attribution"]
        rows = [
            (
                i.local_day,
                f"{i.local_hour:02d}h",
                i.municipality_code,
                i.killed,
                i.injured,
                ", ".join(f"{w.kind.value}:{w.count}" for w in i.weapons) or "—",
                i.attribution_status,
                i.address,
                i.incident_id,
            )
            for i in found
        ]
        title = f"{len(found)} incidents"
        out.emit(
            found,
            lambda c: c.print(rows_table(title, [*columns, "address", "incident id"], rows)),
        )


@list_app.command("waves")
def list_waves(
    ctx: typer.Context,
    *,
    area_kind: Annotated[AreaKind | None, typer.Option(help="With --area.")] = None,
    area: Codes = None,
    since: Annotated[str | None, typer.Option("--from", help="Span ends at or after.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Span starts at or before.")] = None,
    limit: Limit = 50,
    min_position: MinPosition = 0,
) -> None:
    """Violence waves, by first shooting."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        found = list(
            islice(
                registry.iter_waves(
                    area_kind=area_kind,
                    area_codes=area or (),
                    from_time=parsing.optional_when(since, tz),
                    to_time=parsing.optional_when(until, tz),
                    page_size=min(limit, 500),
                    min_position=min_position,
                ),
                limit,
            )
        )
        rows = [
            (
                f"{w.area_kind.value} {w.area_code}",
                w.first_occurred_at,
                w.last_occurred_at,
                len(w.incident_ids),
                f"{w.min_shootings} in {w.window_hours} h",
                w.wave_id,
            )
            for w in found
        ]
        columns = ["area", "first shooting", "last shooting", "shootings", "rule", "wave id"]
        out.emit(found, lambda c: c.print(rows_table(f"{len(found)} waves", columns, rows)))


@list_app.command("commands")
def list_commands(
    ctx: typer.Context,
    *,
    municipality: Codes = None,
    active_only: Annotated[bool, typer.Option(help="Only active commands.")] = False,
    limit: Limit = 50,
    min_position: MinPosition = 0,
) -> None:
    """Unified police commands, newest first."""
    with session(ctx) as (registry, out):
        found = list(
            islice(
                registry.iter_unified_commands(
                    municipality_codes=municipality or (),
                    active_only=active_only,
                    page_size=min(limit, 500),
                    min_position=min_position,
                ),
                limit,
            )
        )
        rows = [
            (
                c.starts_at,
                c.status,
                c.lead_authority,
                c.police_zone_codes,
                c.municipality_codes,
                len(c.triggering_incident_ids),
                c.command_id,
            )
            for c in found
        ]
        columns = ["starts", "status", "lead", "zones", "municipalities", "triggers", "id"]
        out.emit(found, lambda c: c.print(rows_table(f"{len(found)} commands", columns, rows)))


@list_app.command("municipalities")
def list_municipalities(
    ctx: typer.Context, municipality: Codes = None, min_position: MinPosition = 0
) -> None:
    """Each municipality of the catalog and the unified command it is under now."""
    with session(ctx) as (registry, out):
        found = registry.get_municipality_commands(
            municipality_codes=municipality or (), min_position=min_position
        )
        rows = [
            (
                m.municipality_code,
                m.municipality_name,
                m.police_zone_code,
                text(m.active_command.lead_authority if m.active_command else None),
            )
            for m in found.municipalities
        ]
        columns = ["code", "name", "zone", "under command of"]
        title = f"municipalities (log position {found.position})"
        out.emit(found, lambda c: c.print(rows_table(title, columns, rows)))


def register(app: typer.Typer) -> None:
    """Add `get` and `list` to `app`."""
    app.add_typer(get_app, name="get", rich_help_panel="Reads")
    app.add_typer(list_app, name="list", rich_help_panel="Reads")
