"""A varied log to export and import: the demo's week and two thousand shootings after it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from incident_registry_client import (
    AreaKind,
    AssetRecoveryGrouping,
    PeriodKind,
    RegistryClient,
    ShootingReport,
    TimePrecision,
    Weapon,
    WeaponKind,
)

SHOOTINGS = 2000


def populate(registry: RegistryClient) -> None:
    """Shootings every seven hours over the 19 municipalities (too sparse for more waves)."""
    start = datetime(2023, 1, 2, 3, tzinfo=UTC)
    kinds = list(WeaponKind)
    reports = [
        ShootingReport(
            occurred_at=start + timedelta(hours=7 * i),
            occurred_at_precision=TimePrecision.HOUR,
            municipality_code=f"210{1 + i % 19:02d}",
            weapons=[Weapon(kinds[i % len(kinds)], 1 + i % 3)],
            killed=int(i % 11 == 0),
            injured=i % 4,
            description=f"shooting {i}",
            request_id=f"transfer-{i}",
        )
        for i in range(SHOOTINGS)
    ]
    for offset in range(0, len(reports), 1000):
        registry.report_shootings(shootings=reports[offset : offset + 1000])


def read_models(registry: RegistryClient) -> dict[str, Any]:
    """Everything the read models serve, once they include the head of the log."""
    head = registry.get_head().position
    found: dict[str, Any] = {}
    for area_kind in AreaKind:
        for period_kind in PeriodKind:
            rows = registry.get_area_statistics(
                area_kind=area_kind, period_kind=period_kind, min_position=head
            ).rows
            found[f"{area_kind.value}/{period_kind.value}"] = [asdict(row) for row in rows]
    breakdown = registry.get_incident_breakdown(min_position=head)
    found["breakdown"] = {**asdict(breakdown), "position": None}
    for grouping in AssetRecoveryGrouping:
        kind = PeriodKind.MONTH if grouping is AssetRecoveryGrouping.PERIOD else None
        assets = registry.get_asset_recovery_statistics(
            group_by=grouping, period_kind=kind, min_position=head
        )
        found[f"assets/{grouping.value}"] = (
            [asdict(row) for row in assets.rows],
            asdict(assets.totals),
        )
    found["waves"] = sorted(
        (str(w.wave_id), sorted(map(str, w.incident_ids)))
        for w in registry.iter_waves(min_position=head)
    )
    found["incidents"] = sorted(
        (str(i.incident_id), i.version, i.killed, i.injured, i.attribution_status.value)
        for i in registry.iter_incidents(page_size=500, min_position=head)
    )
    found["commands"] = [
        (str(m.municipality_code), m.active_command.command_id if m.active_command else None)
        for m in registry.get_municipality_commands(min_position=head).municipalities
    ]
    return found
