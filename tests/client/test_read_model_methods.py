"""Read-model methods of the sync client: statistics, listings, waves and projection admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from incident_registry_client import (
    AreaKind,
    AssetItem,
    AssetKind,
    AssetRecoveryGrouping,
    AttributionStatus,
    Beneficiary,
    BeneficiaryKind,
    CommandStatus,
    ConfidenceBand,
    IncidentAttributionStatus,
    PeriodKind,
    ProjectionState,
    RegistryClient,
    StatisticsTotals,
    WeaponKind,
)

from service.domain.wave import WaveRule
from tests.client.conftest import ANDERLECHT, FAST_RETRY, IXELLES, MIDI_ZONE, hours_ago, report
from tests.support.harness import ServerHarness


def test_area_statistics_read_their_writes(client):
    written = [report(client, killed=1), report(client, municipality_code=IXELLES)]
    statistics = client.get_area_statistics(
        area_kind=AreaKind.MUNICIPALITY,
        period_kind=PeriodKind.YEAR,
        min_position=written[-1].position,
    )
    assert statistics.position >= written[-1].position
    rows = {row.area_code: row for row in statistics.rows}
    assert set(rows) == {ANDERLECHT, IXELLES}
    assert (rows[ANDERLECHT].incidents, rows[ANDERLECHT].killed) == (1, 1)
    assert rows[ANDERLECHT].period_kind is PeriodKind.YEAR


def test_incident_breakdown(client):
    gang_id = client.register_gang(name="Clan X").aggregate_id
    incident_id = report(client).aggregate_id
    last = client.attribute_to_gang(
        incident_id=incident_id,
        gang_id=gang_id,
        confidence=0.9,
        status=AttributionStatus.CONFIRMED,
        basis="wiretap",
    )
    breakdown = client.get_incident_breakdown(
        area_kind=AreaKind.POLICE_ZONE, area_codes=[MIDI_ZONE], min_position=last.position
    )
    assert breakdown.totals == StatisticsTotals(incidents=1, killed=0, injured=1)
    assert len(breakdown.hour_weekday) == 168
    rifles = next(w for w in breakdown.weapon_kinds if w.kind is WeaponKind.ASSAULT_RIFLE)
    assert (rifles.incidents, rifles.weapons) == (1, 2)
    shares = {s.status: s.share for s in breakdown.attribution_statuses}
    assert shares[IncidentAttributionStatus.CONFIRMED] == 1.0
    assert {b.band for b in breakdown.confidence_bands} == set(ConfidenceBand)
    (gang,) = breakdown.gangs
    assert (gang.gang_id, gang.confirmed_incidents) == (gang_id, 1)


def test_watch_statistics_sends_a_snapshot_then_changes(client):
    first = report(client)
    with client.watch_statistics(
        area_kind=AreaKind.MUNICIPALITY, period_kind=PeriodKind.YEAR, min_position=first.position
    ) as watch:
        snapshot = next(watch)
        assert snapshot.snapshot
        assert snapshot.totals.incidents == 1
        second = report(client, municipality_code=IXELLES, killed=2)
        change = next(watch)
        while change.position < second.position:
            change = next(watch)
        assert not change.snapshot
        assert [row.area_code for row in change.rows] == [IXELLES]
        assert change.totals == StatisticsTotals(incidents=2, killed=2, injured=2)


def test_asset_recovery_statistics_by_beneficiary(client):
    case_id = client.record_asset_seizure(
        occurred_at=hours_ago(48),
        case_reference="BR.21.L1.000042/24",
        municipality_code=ANDERLECHT,
        items=[AssetItem(AssetKind.CASH, 5_000_000, "banknotes")],
    ).aggregate_id
    client.confiscate_assets(
        case_id=case_id, amount_cents=4_000_000, court="Tribunal", decision_reference="JUG-1"
    )
    youth = Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth sports Anderlecht")
    written = client.reinvest_assets(case_id=case_id, amount_cents=1_000_000, beneficiary=youth)
    statistics = client.get_asset_recovery_statistics(
        group_by=AssetRecoveryGrouping.BENEFICIARY, min_position=written.position
    )
    assert statistics.currency == "EUR"
    unattributed, programme = statistics.rows
    assert unattributed.beneficiary is None
    assert unattributed.seized_value_cents == 5_000_000
    assert programme.beneficiary == youth
    assert programme.reinvested_value_cents == 1_000_000
    assert statistics.totals.reinvested_share == 0.25

    by_kind = client.get_asset_recovery_statistics(
        group_by=AssetRecoveryGrouping.ASSET_KIND, min_position=written.position
    )
    assert {row.asset_kind for row in by_kind.rows} == {None, AssetKind.CASH}


def test_list_and_iterate_incidents(client):
    written = [report(client, occurred_at=hours_ago(10 - i)) for i in range(5)]
    report(client, municipality_code=IXELLES)
    page = client.list_incidents(
        municipality_codes=[ANDERLECHT], page_size=2, min_position=written[-1].position + 1
    )
    assert [i.incident_id for i in page.items] == [w.aggregate_id for w in written[::-1][:2]]
    assert page.next_page_token
    second = client.list_incidents(
        municipality_codes=[ANDERLECHT], page_size=2, page_token=page.next_page_token
    )
    assert second.items[0].incident_id == written[2].aggregate_id

    everything = list(client.iter_incidents(municipality_codes=[ANDERLECHT], page_size=2))
    assert [i.incident_id for i in everything] == [w.aggregate_id for w in written[::-1]]
    summary = everything[0]
    assert summary.police_zone_code == MIDI_ZONE
    assert summary.attribution_status is IncidentAttributionStatus.UNATTRIBUTED
    assert summary.local_month == summary.local_day[:7]

    found = list(client.iter_incidents(query="SELLING point", weapon_kinds=[WeaponKind.SHOTGUN]))
    assert found == []


def test_unified_command_listings(client):
    command_id = client.unify_police_command(
        municipality_codes=[ANDERLECHT], lead_authority="Mayor", reason="wave"
    ).aggregate_id
    ended = client.unify_police_command(
        municipality_codes=[IXELLES], lead_authority="Mayor of Ixelles", reason="riots"
    ).aggregate_id
    written = client.end_unified_command(command_id=ended, reason="calm")

    now = client.get_municipality_commands(
        municipality_codes=[ANDERLECHT, IXELLES], min_position=written.position
    )
    by_code = {m.municipality_code: m for m in now.municipalities}
    active = by_code[ANDERLECHT].active_command
    assert active is not None
    assert active.command_id == command_id
    assert by_code[IXELLES].active_command is None
    assert by_code[ANDERLECHT].municipality_name

    page = client.list_unified_commands(active_only=True)
    assert [c.command_id for c in page.items] == [command_id]
    every = list(client.iter_unified_commands(page_size=1))
    assert {c.command_id for c in every} == {command_id, ended}
    assert {c.status for c in every} == {CommandStatus.ACTIVE, CommandStatus.ENDED}


def test_projection_admin(client):
    written = report(client)
    names = [p.name for p in client.list_projections()]
    assert "statistics" in names

    paused = client.pause_projection(name="statistics")
    assert paused.state is ProjectionState.PAUSED
    resumed = client.resume_projection(name="statistics")
    assert resumed.state is ProjectionState.RUNNING
    rebuilt = client.rebuild_projection(name="statistics")
    assert rebuilt.start_position == 0
    reset = client.reset_projection(name="statistics", position=written.position)
    assert reset.start_position == written.position
    assert isinstance(reset.lag, timedelta)


@pytest.fixture
def wave_server(tmp_path, backend_factory):
    harness = ServerHarness(
        tmp_path / "waves.sqlite", backend_factory=backend_factory, wave_rule=WaveRule()
    ).start()
    yield harness
    harness.stop()


def test_list_and_iterate_waves(wave_server):
    wednesday = datetime(2024, 11, 27, 5, 10, tzinfo=UTC)
    with RegistryClient(wave_server.target, retry=FAST_RETRY) as registry:
        written = [
            report(registry, occurred_at=wednesday + timedelta(hours=20 * i)) for i in range(3)
        ]
        page = registry.list_waves(
            area_kind=AreaKind.POLICE_ZONE,
            area_codes=[MIDI_ZONE],
            from_time=wednesday - timedelta(days=1),
            min_position=written[-1].position,
        )
        (wave,) = page.items
        assert isinstance(wave.wave_id, UUID)
        assert wave.area_kind is AreaKind.MUNICIPALITY
        assert wave.incident_ids == tuple(w.aggregate_id for w in written)
        assert wave.first_occurred_at == wednesday
        assert list(registry.iter_waves(page_size=1)) == [wave]
