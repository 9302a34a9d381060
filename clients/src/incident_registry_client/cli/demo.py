"""`incidents demo`: the week of the news story, written so that every read model has data.

Every write has a fixed request id (demo_data.PREFIX + a key): running the demo again
replays each write and records nothing new. It then waits for each read model to include the
last write (min_position) and shows a short summary of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from uuid import UUID

import typer
from rich.console import Console

from incident_registry_client import (
    AreaKind,
    AreaStatistics,
    AssetRecoveryGrouping,
    AssetRecoveryStatistics,
    AttributionStatus,
    IncidentSummary,
    InvalidArgumentError,
    MunicipalityCommands,
    PeriodKind,
    ProjectionInfo,
    RegistryClient,
    ViolenceWave,
    WriteResult,
)
from incident_registry_client.cli import demo_data as story
from incident_registry_client.cli.projections import status_table
from incident_registry_client.cli.render import money, rows_table
from incident_registry_client.cli.session import REFUSED, fail, session


@dataclass
class Written:
    """The demo's writes: ids by key, how many were new, and the last position."""

    ids: dict[str, UUID] = field(default_factory=dict)
    new: int = 0
    replayed: int = 0
    position: int = 0

    def add(self, key: str, result: WriteResult) -> UUID:
        """Count a write and remember its aggregate under `key`."""
        self.ids[key] = result.aggregate_id
        self.position = max(self.position, result.position)
        if result.replayed:
            self.replayed += 1
        else:
            self.new += 1
        return result.aggregate_id


def rid(key: str) -> str:
    """The fixed request id of one of the demo's writes."""
    return story.PREFIX + key


def write_story(registry: RegistryClient) -> Written:
    """Record the week: shootings, gangs, attributions, links, the command, the asset cases."""
    done = Written()
    results = registry.report_shootings(shootings=[report for _, report in story.SHOOTINGS])
    for (key, _), result in zip(story.SHOOTINGS, results, strict=True):
        done.add(key, result)
    for gang in story.GANGS:
        result = registry.register_gang(
            name=gang.name,
            territory_municipality_codes=gang.territory,
            territory_description=gang.territory_description,
            occurred_at=gang.registered_at,
            request_id=rid(gang.key),
        )
        done.add(gang.key, result)
    for a in story.ATTRIBUTIONS:
        result = registry.attribute_to_gang(
            incident_id=done.ids[a.incident],
            gang_id=done.ids[a.gang],
            confidence=a.confidence,
            status=AttributionStatus.SUSPECTED,
            basis=a.basis,
            occurred_at=a.at,
            request_id=rid(f"attribute:{a.incident}"),
        )
        done.add(a.incident, result)
    for incident, related, kind, note in story.LINKS:
        result = registry.link_incidents(
            incident_id=done.ids[incident],
            related_incident_id=done.ids[related],
            kind=kind,
            note=note,
            occurred_at=story.COMMAND["occurred_at"],  # type: ignore[arg-type]
            request_id=rid(f"link:{incident}"),
        )
        done.add(incident, result)
    result = registry.unify_police_command(
        **story.COMMAND,  # type: ignore[arg-type]
        triggering_incident_ids=[done.ids[key] for key, _ in story.SHOOTINGS],
        request_id=rid("unified-command"),
    )
    done.add("unified-command", result)
    for case in story.CASES:
        _write_case(registry, done, case)
    return done


def _write_case(registry: RegistryClient, done: Written, case: story.Case) -> None:
    case_id = done.add(
        case.key,
        registry.record_asset_seizure(
            occurred_at=case.seized_at,
            case_reference=case.reference,
            items=case.items,
            municipality_code=story.ANDERLECHT,
            gang_id=done.ids[case.gang],
            incident_ids=[done.ids[key] for key in case.incidents],
            description=case.description,
            request_id=rid(f"{case.key}:seizure"),
        ),
    )
    done.add(
        case.key,
        registry.confiscate_assets(
            case_id=case_id,
            amount_cents=case.confiscated_cents,
            court=case.court,
            decision_reference=f"{case.reference}/J1",
            occurred_at=case.confiscated_at,
            request_id=rid(f"{case.key}:confiscation"),
        ),
    )
    for index, (amount, beneficiary, note, at) in enumerate(case.reinvestments, 1):
        done.add(
            case.key,
            registry.reinvest_assets(
                case_id=case_id,
                amount_cents=amount,
                beneficiary=beneficiary,
                note=note,
                occurred_at=at,
                request_id=rid(f"{case.key}:reinvestment-{index}"),
            ),
        )


@dataclass(frozen=True)
class ReadModels:
    """What each read model serves once it includes the demo's last write."""

    statistics: AreaStatistics
    incidents: list[IncidentSummary]
    waves: list[ViolenceWave]
    municipality_commands: MunicipalityCommands
    asset_recovery: AssetRecoveryStatistics
    projections: tuple[ProjectionInfo, ...]


def read_models(registry: RegistryClient, position: int) -> ReadModels:
    """Each read model, once it includes `position`."""
    return ReadModels(
        statistics=registry.get_area_statistics(
            area_kind=AreaKind.MUNICIPALITY,
            period_kind=PeriodKind.DAY,
            from_period="2025-02-03",
            to_period="2025-02-09",
            min_position=position,
        ),
        incidents=list(
            registry.iter_incidents(occurred_to=story.local(2, 10, 0), min_position=position)
        ),
        waves=list(registry.iter_waves(min_position=position)),
        municipality_commands=registry.get_municipality_commands(
            municipality_codes=[story.ANDERLECHT, story.FOREST, "21013"], min_position=position
        ),
        asset_recovery=registry.get_asset_recovery_statistics(
            group_by=AssetRecoveryGrouping.BENEFICIARY, min_position=position
        ),
        projections=registry.list_projections(),
    )


def _local(moment: datetime | None) -> str:
    return moment.astimezone(story.BRUSSELS).strftime("%a %d %b %H:%M") if moment else "?"


def show(console: Console, done: Written, models: ReadModels) -> None:
    """A short summary of each read model."""

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    say(
        f"The week of 5-7 February 2025 in Brussels: {done.new} writes recorded, "
        f"{done.replayed} replayed (already there), last position {done.position}"
    )
    stats = models.statistics.rows
    rows = [(r.area_code, r.period, r.incidents, r.killed, r.injured) for r in stats]
    columns = ["municipality", "day", "incidents", "killed", "injured"]
    console.print(rows_table("statistics by municipality and day", columns, rows, numeric=3))
    incidents = [
        (i.local_day, f"{i.local_hour:02d}h", i.municipality_code, i.killed, i.injured,
         i.attribution_status, i.address)
        for i in models.incidents
    ]  # fmt: skip
    columns = ["day", "hour", "municipality", "killed", "injured", "attribution", "address"]
    console.print(rows_table("incidents (newest first)", columns, incidents))
    for wave in models.waves:
        say(
            f"wave in {wave.area_kind.value} {wave.area_code}: {len(wave.incident_ids)} shootings "
            f"from {_local(wave.first_occurred_at)} to {_local(wave.last_occurred_at)} "
            f"(Brussels time), {wave.min_shootings} within {wave.window_hours} h"
        )
    if not models.waves:
        say("waves: none detected (is the server's wave rule on?)")
    for entry in models.municipality_commands.municipalities:
        command = entry.active_command
        lead = command.lead_authority if command else "no unified command"
        say(f"command: {entry.municipality_name} ({entry.police_zone_code}) → {lead}")
    assets = models.asset_recovery
    t, currency = assets.totals, assets.currency
    say(
        f"asset recovery: seized {money(t.seized_value_cents, currency)}, confiscated "
        f"{money(t.confiscated_value_cents, currency)}, reinvested "
        f"{money(t.reinvested_value_cents, currency)} ({t.reinvested_share:.0%})"
    )
    for row in assets.rows:
        if row.beneficiary is not None:
            say(
                f"  → {row.beneficiary.name} ({row.beneficiary.kind.value}): "
                f"{money(row.reinvested_value_cents, currency)}"
            )
    console.print(status_table(models.projections))


def demo(ctx: typer.Context) -> None:
    """Load the week of the Brussels news story and show every read model (re-runnable)."""
    with session(ctx, default_actor="incidents-demo") as (registry, out):
        try:
            done = write_story(registry)
        except InvalidArgumentError as err:
            if any("municipality" in v.field for v in err.field_violations):
                fail(
                    out,
                    "error: the demo needs the Brussels area catalog "
                    "(start the server with INCIDENTS_AREA_CATALOG=brussels)",
                    REFUSED,
                )
            raise
        models = read_models(registry, done.position)
        data = {
            "new": done.new,
            "replayed": done.replayed,
            "position": done.position,
            **{f.name: getattr(models, f.name) for f in fields(models)},
        }
        out.emit(data, lambda console: show(console, done, models))


def register(app: typer.Typer) -> None:
    """Add `demo` to `app`."""
    app.command("demo", rich_help_panel="Getting started")(demo)
