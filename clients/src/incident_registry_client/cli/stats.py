"""Statistics as tables: `stats areas`, `stats breakdown`, `stats assets`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from incident_registry_client import AreaKind, AssetRecoveryGrouping, PeriodKind
from incident_registry_client.cli.render import money, rows_table, text
from incident_registry_client.cli.session import session

stats_app = typer.Typer(help="Statistics: by area and period, breakdowns, asset recovery.")

Codes = Annotated[list[str] | None, typer.Option(help="Repeatable.")]
FromPeriod = Annotated[str, typer.Option("--from", help="First period, e.g. 2025-02 or 2025-W06.")]
ToPeriod = Annotated[str, typer.Option("--to", help="Last period (inclusive).")]
MinPosition = Annotated[
    int, typer.Option(help="Wait until the read model includes this log position.")
]


@stats_app.command("areas")
def areas(
    ctx: typer.Context,
    *,
    area_kind: Annotated[AreaKind, typer.Option(help="Group by.")] = AreaKind.MUNICIPALITY,
    period: Annotated[PeriodKind, typer.Option(help="Period kind.")] = PeriodKind.MONTH,
    area: Codes = None,
    from_period: FromPeriod = "",
    to_period: ToPeriod = "",
    min_position: MinPosition = 0,
) -> None:
    """Incidents, killed and injured by area and period."""
    with session(ctx) as (registry, out):
        found = registry.get_area_statistics(
            area_kind=area_kind,
            period_kind=period,
            area_codes=area or (),
            from_period=from_period,
            to_period=to_period,
            min_position=min_position,
        )
        rows: list[tuple[object, ...]] = [
            (r.area_code, r.period, r.incidents, r.killed, r.injured) for r in found.rows
        ]
        rows.append(
            (
                "total",
                "",
                sum(r.incidents for r in found.rows),
                sum(r.killed for r in found.rows),
                sum(r.injured for r in found.rows),
            )
        )
        title = f"by {area_kind.value} and {period.value} (log position {found.position})"
        columns = [area_kind.value, period.value, "incidents", "killed", "injured"]
        out.emit(found, lambda c: c.print(rows_table(title, columns, rows, numeric=3)))


@stats_app.command("breakdown")
def breakdown(
    ctx: typer.Context,
    *,
    area_kind: Annotated[AreaKind | None, typer.Option(help="With --area.")] = None,
    area: Codes = None,
    period: Annotated[PeriodKind | None, typer.Option(help="With --from/--to.")] = None,
    from_period: FromPeriod = "",
    to_period: ToPeriod = "",
    min_position: MinPosition = 0,
) -> None:
    """Totals, busiest hours, weapons, attribution shares and gangs of a selection."""
    with session(ctx) as (registry, out):
        found = registry.get_incident_breakdown(
            area_kind=area_kind,
            area_codes=area or (),
            period_kind=period,
            from_period=from_period,
            to_period=to_period,
            min_position=min_position,
        )

        def show(console: Console) -> None:
            t = found.totals
            console.print(
                f"[bold]{t.incidents}[/] incidents, [bold]{t.killed}[/] killed, "
                f"[bold]{t.injured}[/] injured (log position {found.position})"
            )
            busiest = sorted(found.hour_weekday, key=lambda c: -c.incidents)[:5]
            cells = [(c.weekday, f"{c.hour:02d}h", c.incidents) for c in busiest if c.incidents]
            hours = ["ISO weekday", "hour", "incidents"]
            console.print(rows_table("busiest hours", hours, cells, numeric=1))
            weapons = [(w.kind, w.incidents, w.weapons) for w in found.weapon_kinds if w.incidents]
            kinds = ["kind", "incidents", "weapons"]
            console.print(rows_table("weapons", kinds, weapons, numeric=2))
            shares: list[tuple[object, int, str]] = [
                (s.status, s.incidents, f"{s.share:.0%}") for s in found.attribution_statuses
            ]
            shares += [
                (f"band {b.band.value}", b.incidents, f"{b.share:.0%}")
                for b in found.confidence_bands
            ]
            console.print(rows_table("attribution", ["", "incidents", "share"], shares, numeric=2))
            gangs = [
                (
                    g.gang_id,
                    g.incidents,
                    g.killed,
                    g.injured,
                    g.suspected_incidents,
                    g.confirmed_incidents,
                )
                for g in found.gangs
            ]
            columns = ["gang", "incidents", "killed", "injured", "suspected", "confirmed"]
            console.print(rows_table("gangs", columns, gangs, numeric=5))

        out.emit(found, show)


@stats_app.command("assets")
def assets(
    ctx: typer.Context,
    *,
    group_by: Annotated[
        AssetRecoveryGrouping, typer.Option(help="Rows by.")
    ] = AssetRecoveryGrouping.PERIOD,
    period: Annotated[PeriodKind | None, typer.Option(help="Period kind (default month).")] = None,
    from_period: FromPeriod = "",
    to_period: ToPeriod = "",
    municipality: Codes = None,
    gang: Annotated[list[UUID] | None, typer.Option(help="Repeatable.")] = None,
    min_position: MinPosition = 0,
) -> None:
    """Seized, confiscated, reinvested and released value."""
    if period is None and (group_by is AssetRecoveryGrouping.PERIOD or from_period or to_period):
        period = PeriodKind.MONTH
    with session(ctx) as (registry, out):
        found = registry.get_asset_recovery_statistics(
            group_by=group_by,
            period_kind=period,
            from_period=from_period,
            to_period=to_period,
            municipality_codes=municipality or (),
            gang_ids=gang or (),
            min_position=min_position,
        )

        def key(row: object) -> str:
            value = getattr(row, _KEYS[group_by])
            if group_by is AssetRecoveryGrouping.BENEFICIARY and value is not None:
                return f"{value.name} ({value.kind.value})"
            return text(value) if value not in (None, "") else "(none)"

        cur = found.currency
        rows = [
            (
                key(r),
                money(r.seized_value_cents),
                money(r.confiscated_value_cents),
                money(r.reinvested_value_cents),
                money(r.released_value_cents),
            )
            for r in found.rows
        ]
        t = found.totals
        rows.append(
            (
                "total",
                money(t.seized_value_cents),
                money(t.confiscated_value_cents),
                money(t.reinvested_value_cents),
                money(t.released_value_cents),
            )
        )
        columns = [group_by.value, f"seized {cur}", "confiscated", "reinvested", "released"]
        title = (
            f"asset recovery by {group_by.value}: {t.reinvested_share:.0%} of the confiscated "
            f"value reinvested (log position {found.position})"
        )
        out.emit(found, lambda c: c.print(rows_table(title, columns, rows, numeric=4)))


_KEYS = {
    AssetRecoveryGrouping.PERIOD: "period",
    AssetRecoveryGrouping.ASSET_KIND: "asset_kind",
    AssetRecoveryGrouping.GANG: "gang_id",
    AssetRecoveryGrouping.BENEFICIARY: "beneficiary",
    AssetRecoveryGrouping.MUNICIPALITY: "municipality_code",
}


def register(app: typer.Typer) -> None:
    """Add `stats` to `app`."""
    app.add_typer(stats_app, name="stats", rich_help_panel="Reads")
