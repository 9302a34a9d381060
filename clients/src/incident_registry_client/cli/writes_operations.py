"""Ad-hoc writes about police commands and asset recovery: unify, end-command, seize...

Amounts are given in currency units (e.g. 1250.50) and sent as minor units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

import typer

from incident_registry_client import Beneficiary, BeneficiaryKind
from incident_registry_client.cli import parsing
from incident_registry_client.cli.session import session, settings_of
from incident_registry_client.cli.writes import (
    ExpectedVersion,
    OccurredAt,
    RequestId,
    show_written,
)

Amount = Annotated[str, typer.Option(help="In currency units, e.g. 40000 or 1250.50.")]
Court = Annotated[str, typer.Option(help="The deciding court.")]
Decision = Annotated[str, typer.Option(help="The decision's reference.")]


def unify(
    ctx: typer.Context,
    *,
    lead_authority: Annotated[str, typer.Option(help="Who leads the unified command.")],
    reason: Annotated[str, typer.Option(help="Why the command is unified.")],
    municipality: Annotated[
        list[str] | None, typer.Option(help="Municipality code, repeatable.")
    ] = None,
    zone: Annotated[
        list[str] | None, typer.Option(help="Police zone code (all its municipalities).")
    ] = None,
    starts_at: Annotated[str | None, typer.Option(help="Start (default: now).")] = None,
    planned_end_at: Annotated[str | None, typer.Option(help="Planned end.")] = None,
    trigger: Annotated[
        list[UUID] | None, typer.Option(help="A triggering incident id, repeatable.")
    ] = None,
    request_id: RequestId = None,
) -> None:
    """Put municipalities or police zones under one temporary command."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.unify_police_command(
            lead_authority=lead_authority,
            reason=reason,
            municipality_codes=municipality or (),
            police_zone_codes=zone or (),
            starts_at=parsing.optional_when(starts_at, tz),
            planned_end_at=parsing.optional_when(planned_end_at, tz),
            triggering_incident_ids=trigger or (),
            request_id=request_id,
        )
        show_written(out, "unified command", result)


def end_command(
    ctx: typer.Context,
    *,
    command_id: Annotated[UUID, typer.Argument(help="The unified command.")],
    reason: Annotated[str, typer.Option(help="Why it ends.")],
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """End a unified command."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.end_unified_command(
            command_id=command_id,
            reason=reason,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "unified command", result)


def seize(
    ctx: typer.Context,
    *,
    case_reference: Annotated[str, typer.Argument(help="The judicial reference of the case.")],
    item: Annotated[
        list[str],
        typer.Option(help="KIND:VALUE[:DESCRIPTION], repeatable: vehicle:95000:luxury car"),
    ],
    occurred_at: Annotated[str, typer.Option(help="When the assets were seized.")],
    municipality: Annotated[str, typer.Option(help="Where (municipality code).")] = "",
    gang: Annotated[UUID | None, typer.Option(help="The gang the assets belong to.")] = None,
    incident: Annotated[
        list[UUID] | None, typer.Option(help="A related incident id, repeatable.")
    ] = None,
    description: str = "",
    request_id: RequestId = None,
) -> None:
    """Record a seizure of assets (a new case, or one more seizure in the case)."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.record_asset_seizure(
            occurred_at=parsing.when(occurred_at, tz),
            case_reference=case_reference,
            items=[parsing.asset_item(i) for i in item],
            municipality_code=municipality,
            gang_id=gang,
            incident_ids=incident or (),
            description=description,
            request_id=request_id,
        )
        show_written(out, "asset case", result)


def confiscate(
    ctx: typer.Context,
    *,
    case_id: Annotated[UUID, typer.Argument(help="The asset case.")],
    amount: Amount,
    court: Court,
    decision: Decision,
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Record a court's confiscation of an amount of a case."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.confiscate_assets(
            case_id=case_id,
            amount_cents=parsing.cents(amount),
            court=court,
            decision_reference=decision,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "asset case", result)


def reinvest(
    ctx: typer.Context,
    *,
    case_id: Annotated[UUID, typer.Argument(help="The asset case.")],
    amount: Amount,
    beneficiary: Annotated[str, typer.Option(help="Who receives it (a name).")],
    kind: Annotated[
        BeneficiaryKind, typer.Option(help="Law enforcement or a social programme.")
    ] = BeneficiaryKind.LAW_ENFORCEMENT,
    note: str = "",
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Reinvest a confiscated amount in law enforcement or a social programme."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.reinvest_assets(
            case_id=case_id,
            amount_cents=parsing.cents(amount),
            beneficiary=Beneficiary(kind, beneficiary),
            note=note,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "asset case", result)


def release(
    ctx: typer.Context,
    *,
    case_id: Annotated[UUID, typer.Argument(help="The asset case.")],
    amount: Amount,
    court: Court,
    decision: Decision,
    reason: str = "",
    occurred_at: OccurredAt = None,
    request_id: RequestId = None,
    expected_version: ExpectedVersion = None,
) -> None:
    """Record a court's release of an amount of a case."""
    tz = settings_of(ctx).timezone
    with session(ctx) as (registry, out):
        result = registry.release_assets(
            case_id=case_id,
            amount_cents=parsing.cents(amount),
            court=court,
            decision_reference=decision,
            reason=reason,
            occurred_at=parsing.optional_when(occurred_at, tz),
            request_id=request_id,
            expected_version=expected_version,
        )
        show_written(out, "asset case", result)


def register(app: typer.Typer) -> None:
    """Add the police command and asset recovery writes to `app`."""
    panel = "Writes"
    commands: list[tuple[str, Callable[..., None]]] = [
        ("unify", unify),
        ("end-command", end_command),
        ("seize", seize),
        ("confiscate", confiscate),
        ("reinvest", reinvest),
        ("release", release),
    ]
    for name, command in commands:
        app.command(name, rich_help_panel=panel)(command)
