"""Ad-hoc writes about incidents and gangs: report, revise, amend, attribute, retract, link...

Each prints where the write landed (aggregate id, version, log position, replayed); give
`--request-id` to make a write safe to repeat (a repeat is replayed, not redone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from incident_registry_client import (
    AttributionStatus,
    GeoPoint,
    IncidentCorrection,
    LinkKind,
    Source,
    SourceKind,
    TimePrecision,
    WriteResult,
)
from incident_registry_client.cli import parsing
from incident_registry_client.cli.render import rows_table
from incident_registry_client.cli.session import Output, session, settings_of

RequestId = Annotated[
    str | None, typer.Option(help="Idempotency key: repeating the write replays it.")
]
ExpectedVersion = Annotated[
    int | None, typer.Option(help="Optimistic concurrency: fail unless at this version.")
]
OccurredAt = Annotated[
    str | None, typer.Option(help="Business time (ISO 8601, or 'now'; default: now).")
]
Reason = Annotated[str, typer.Option(help="Why (recorded with the event).")]
Weapons = Annotated[
    list[str] | None, typer.Option("--weapon", help="KIND[:COUNT], repeatable: assault_rifle:2")
]


def show_written(out: Output, what: str, result: WriteResult) -> None:
    """Print a write's result: a line of JSON, or one table row."""

    def table(console: Console) -> None:
        state = "replayed (nothing new written)" if result.replayed else "written"
        console.print(
            rows_table(
                f"{what}: {state}",
                ["aggregate id", "version", "position"],
                [(result.aggregate_id, result.version, result.position)],
                numeric=2,
            )
        )

    out.emit(result, table)


def source(text: str) -> Source:
    """KIND[:NAME[:REFERENCE]], e.g. "press:Brussels Times:https://...".

    Only the first two colons separate: a reference (a URL) may hold more.
    """
    kind, _, rest = text.partition(":")
    name, _, reference = rest.partition(":")
    return Source(parsing.choice(SourceKind, kind), name, reference)


def report(
    ctx: typer.Context,
    *,
    occurred_at: Annotated[str, typer.Option(help="When it happened (ISO 8601).")],
    municipality: Annotated[str, typer.Option(help="Municipality code, e.g. 21001.")],
    precision: Annotated[
        TimePrecision, typer.Option(help="How precisely the time is known.")
    ] = TimePrecision.MINUTE,
    reported_at: Annotated[str | None, typer.Option(help="When it was reported.")] = None,
    address: str = "",
    lat: Annotated[float | None, typer.Option(help="Latitude (with --lon).")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude (with --lat).")] = None,
    weapon: Weapons = None,
    assailants: Annotated[int, typer.Option(help="Number of assailants.")] = 0,
    masked: Annotated[bool, typer.Option(help="The assailants were masked.")] = False,
    killed: int = 0,
    injured: int = 0,
    drug_nexus: Annotated[bool, typer.Option(help="Linked to drug trafficking.")] = False,
    description: str = "",
    source_: Annotated[
        list[str] | None,
        typer.Option("--source", help="KIND[:NAME[:REFERENCE]], repeatable: press:Le Soir"),
    ] = None,
    external_reference: str = "",
    request_id: RequestId = None,
) -> None:
    """Report a shooting."""
    tz = settings_of(ctx).timezone
    if (lat is None) != (lon is None):
        raise typer.BadParameter("give both --lat and --lon, or neither")
    location = GeoPoint(lat, lon) if lat is not None and lon is not None else None
    with session(ctx) as (registry, out):
        result = registry.report_shooting(
            occurred_at=parsing.when(occurred_at, tz),
            occurred_at_precision=precision,
            municipality_code=municipality,
            reported_at=parsing.optional_when(reported_at, tz),
            address=address,
            location=location,
            weapons=[parsing.weapon(w) for w in weapon or ()],
            assailant_count=assailants,
            assailants_masked=masked,
            killed=killed,
            injured=injured,
            drug_nexus=drug_nexus,
            description=description,
            sources=[source(s) for s in source_ or ()],
            external_reference=external_reference,
            request_id=request_id,
        )
        show_written(out, "incident", result)


def revise(
    ctx: typer.Context,
    *,
    incident_id: Annotated[UUID, typer.Argument(help="The incident.")],
    killed: Annotated[int, typer.Option(help="New total killed.")],
    injured: Annotated[int, typer.Option(help="New total injured.")],
    reason: Reason,
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Revise an incident's casualty totals (e.g. a victim died later)."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.revise_casualties(
            incident_id=incident_id,
            killed=killed,
            injured=injured,
            reason=reason,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "incident", result)


def amend(
    ctx: typer.Context,
    *,
    incident_id: Annotated[UUID, typer.Argument(help="The incident.")],
    reason: Reason,
    time: Annotated[str | None, typer.Option("--time", help="Corrected occurred_at.")] = None,
    precision: Annotated[TimePrecision | None, typer.Option(help="Corrected precision.")] = None,
    municipality: Annotated[str | None, typer.Option(help="Corrected municipality.")] = None,
    address: Annotated[str | None, typer.Option(help="Corrected address.")] = None,
    weapon: Weapons = None,
    description: Annotated[str | None, typer.Option(help="Corrected description.")] = None,
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Correct facts of an incident (only the options given), with a reason."""
    tz = settings_of(ctx).timezone
    correction = IncidentCorrection(
        occurred_at=parsing.optional_when(time, tz),
        occurred_at_precision=precision,
        municipality_code=municipality,
        address=address,
        weapons=[parsing.weapon(w) for w in weapon] if weapon else None,
        description=description,
    )
    if not correction.corrected_fields:
        raise typer.BadParameter("nothing to correct: give --time, --municipality, --address...")
    with session(ctx) as (registry, out):
        result = registry.amend_incident(
            incident_id=incident_id,
            correction=correction,
            reason=reason,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "incident", result)


def attribute(
    ctx: typer.Context,
    *,
    incident_id: Annotated[UUID, typer.Argument(help="The incident.")],
    gang_id: Annotated[UUID, typer.Argument(help="The registered gang.")],
    confidence: Annotated[float, typer.Option(help="0 to 1.")],
    basis: Annotated[str, typer.Option(help="What the attribution rests on.")],
    status: Annotated[
        AttributionStatus, typer.Option(help="Suspected or confirmed.")
    ] = AttributionStatus.SUSPECTED,
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Attribute an incident to a gang, or revise the attribution."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.attribute_to_gang(
            incident_id=incident_id,
            gang_id=gang_id,
            confidence=confidence,
            status=status,
            basis=basis,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "incident", result)


def retract(
    ctx: typer.Context,
    *,
    incident_id: Annotated[UUID, typer.Argument(help="The incident.")],
    gang_id: Annotated[UUID, typer.Argument(help="The gang it is attributed to.")],
    reason: Reason,
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Withdraw a current attribution."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.retract_attribution(
            incident_id=incident_id,
            gang_id=gang_id,
            reason=reason,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "incident", result)


def erase_personal_data(
    ctx: typer.Context,
    *,
    incident_id: Annotated[UUID, typer.Argument(help="The incident.")],
    reason: Reason,
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Erase the personal data recorded on an incident (witness names and references; admins
    only): they read as "[erased]" from then on. This cannot be undone."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.erase_personal_data(
            incident_id=incident_id,
            reason=reason,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "incident", result)


def link(
    ctx: typer.Context,
    *,
    incident_id: Annotated[UUID, typer.Argument(help="The incident.")],
    related_id: Annotated[UUID, typer.Argument(help="The related incident.")],
    kind: Annotated[LinkKind, typer.Option(help="How they relate, seen from the first.")],
    note: str = "",
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
) -> None:
    """Link two incidents (retaliation or series)."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.link_incidents(
            incident_id=incident_id,
            related_incident_id=related_id,
            kind=kind,
            note=note,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
        )
        show_written(out, "incident", result)


def register_gang(
    ctx: typer.Context,
    *,
    name: Annotated[str, typer.Argument(help="The gang's name or descriptive label.")],
    alias: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    territory: Annotated[
        list[str] | None, typer.Option(help="Municipality code, repeatable.")
    ] = None,
    territory_description: str = "",
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
) -> None:
    """Register a gang."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.register_gang(
            name=name,
            aliases=alias or (),
            territory_municipality_codes=territory or (),
            territory_description=territory_description,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
        )
        show_written(out, "gang", result)


def add_alias(
    ctx: typer.Context,
    *,
    gang_id: Annotated[UUID, typer.Argument(help="The gang.")],
    alias: Annotated[str, typer.Argument(help="A new alias or pseudonym.")],
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Add an alias to a gang."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.add_gang_alias(
            gang_id=gang_id,
            alias=alias,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "gang", result)


def register(app: typer.Typer) -> None:
    """Add the incident and gang writes to `app`."""
    panel = "Writes"
    commands: list[tuple[str, Callable[..., None]]] = [
        ("report", report),
        ("revise", revise),
        ("amend", amend),
        ("attribute", attribute),
        ("retract", retract),
        ("link", link),
        ("erase-personal-data", erase_personal_data),
        ("register-gang", register_gang),
        ("add-alias", add_alias),
    ]
    for name, command in commands:
        app.command(name, rich_help_panel=panel)(command)
