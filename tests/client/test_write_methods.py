"""Every write and Get* method of the sync client, through a real server."""

from __future__ import annotations

from uuid import UUID

from incident_registry_client import (
    AssetItem,
    AssetKind,
    AssetsReinvested,
    AttributedToGang,
    AttributionStatus,
    Beneficiary,
    BeneficiaryKind,
    CasualtiesRevised,
    CommandStatus,
    GeoPoint,
    IncidentAmended,
    IncidentCorrection,
    LinkKind,
    ShootingReported,
    Source,
    SourceKind,
    TimePrecision,
    Weapon,
    WeaponKind,
    WriteResult,
)

from tests.client.conftest import ACTOR, ANDERLECHT, IXELLES, MIDI_ZONE, hours_ago, report


def test_report_shooting_round_trips_every_field(client):
    occurred, reported, retrieved = hours_ago(5), hours_ago(4), hours_ago(3)
    written = client.report_shooting(
        occurred_at=occurred,
        occurred_at_precision=TimePrecision.EXACT,
        reported_at=reported,
        municipality_code=ANDERLECHT,
        address="Clemenceau metro",
        location=GeoPoint(50.8365, 4.3086),
        weapons=[Weapon(WeaponKind.ASSAULT_RIFLE, 2), Weapon(WeaponKind.HANDGUN)],
        assailant_count=2,
        assailants_masked=True,
        killed=1,
        injured=3,
        drug_nexus=True,
        description="Kalashnikov shots near the metro",
        sources=[Source(SourceKind.PRESS, "Le Soir", "https://example.org/1", retrieved)],
        external_reference="PV-2026-1",
    )
    assert isinstance(written.aggregate_id, UUID)
    assert (written.version, written.replayed) == (1, False)

    fetched = client.get_incident(incident_id=written.aggregate_id)
    incident = fetched.state
    assert incident.incident_id == written.aggregate_id
    assert incident.occurred_at == occurred
    assert incident.reported_at == reported
    assert incident.occurred_at_precision is TimePrecision.EXACT
    assert incident.police_zone_code == MIDI_ZONE
    assert incident.location == GeoPoint(50.8365, 4.3086)
    assert set(incident.weapons) == {
        Weapon(WeaponKind.ASSAULT_RIFLE, 2),
        Weapon(WeaponKind.HANDGUN),
    }
    assert (incident.killed, incident.injured, incident.assailant_count) == (1, 3, 2)
    assert incident.assailants_masked
    assert incident.drug_nexus
    assert incident.sources == (
        Source(SourceKind.PRESS, "Le Soir", "https://example.org/1", retrieved),
    )
    assert incident.external_reference == "PV-2026-1"
    assert incident.recorded_at is not None
    assert incident.recorded_at.tzinfo is not None

    (event,) = fetched.history
    assert event.position == written.position
    assert event.event_type == "ShootingReported"
    assert event.metadata.actor == ACTOR
    assert isinstance(event.payload, ShootingReported)
    assert event.payload.address == "Clemenceau metro"
    assert event.payload_json.startswith("{")


def test_a_write_retried_with_its_request_id_is_replayed(client):
    occurred = hours_ago(2)
    first = report(client, request_id="same-key", occurred_at=occurred)
    again = report(client, request_id="same-key", occurred_at=occurred)
    assert again == WriteResult(first.aggregate_id, first.version, first.position, replayed=True)


def test_each_write_gets_a_fresh_request_id_by_default(client):
    first, second = report(client), report(client)
    assert first.aggregate_id != second.aggregate_id
    ids = [
        client.get_incident(incident_id=w.aggregate_id).history[0].metadata.request_id
        for w in (first, second)
    ]
    assert all(UUID(value) for value in ids)
    assert ids[0] != ids[1]


def test_incident_corrections_attributions_and_links(client):
    incident_id = report(client).aggregate_id
    other_id = report(client, municipality_code=IXELLES).aggregate_id
    gang_id = client.register_gang(name="Clan X").aggregate_id

    client.revise_casualties(
        incident_id=incident_id, killed=1, injured=0, reason="a victim died", expected_version=1
    )
    client.amend_incident(
        incident_id=incident_id,
        correction=IncidentCorrection(
            address="Place de la Vaillance", weapons=[Weapon(WeaponKind.SHOTGUN)]
        ),
        reason="police report",
    )
    client.attribute_to_gang(
        incident_id=incident_id,
        gang_id=gang_id,
        confidence=0.7,
        status=AttributionStatus.SUSPECTED,
        basis="graffiti",
    )
    client.link_incidents(
        incident_id=incident_id,
        related_incident_id=other_id,
        kind=LinkKind.RETALIATION_FOR,
        note="same selling point",
    )
    state = client.get_incident(incident_id=incident_id)
    assert (state.state.killed, state.state.injured) == (1, 0)
    assert state.state.address == "Place de la Vaillance"
    assert state.state.weapons == (Weapon(WeaponKind.SHOTGUN),)
    (attribution,) = state.state.attributions
    assert (attribution.gang_id, attribution.status) == (gang_id, AttributionStatus.SUSPECTED)
    (link,) = state.state.links
    assert (link.related_incident_id, link.kind) == (other_id, LinkKind.RETALIATION_FOR)
    payloads = [event.payload for event in state.history]
    assert isinstance(payloads[1], CasualtiesRevised)
    assert isinstance(payloads[2], IncidentAmended)
    assert payloads[2].correction == IncidentCorrection(
        address="Place de la Vaillance", weapons=(Weapon(WeaponKind.SHOTGUN),)
    )
    assert isinstance(payloads[3], AttributedToGang)

    retracted = client.retract_attribution(
        incident_id=incident_id, gang_id=gang_id, reason="wrong gang"
    )
    assert retracted.version == 6
    assert client.get_incident(incident_id=incident_id).state.attributions == ()


def test_an_amendment_can_clear_the_location(client):
    incident_id = report(client, location=GeoPoint(50.8365, 4.3086)).aggregate_id
    client.amend_incident(
        incident_id=incident_id,
        correction=IncidentCorrection(clear_location=True),
        reason="location was a guess",
    )
    fetched = client.get_incident(incident_id=incident_id)
    assert fetched.state.location is None
    amended = fetched.history[-1].payload
    assert isinstance(amended, IncidentAmended)
    assert amended.correction == IncidentCorrection(clear_location=True)


def test_gangs(client):
    written = client.register_gang(
        name="Clan X",
        aliases=["X"],
        territory_municipality_codes=[ANDERLECHT],
        territory_description="Clemenceau",
    )
    client.add_gang_alias(gang_id=written.aggregate_id, alias="Les X")
    gang = client.get_gang(gang_id=written.aggregate_id)
    assert gang.state.name == "Clan X"
    assert gang.state.aliases == ("X", "Les X")
    assert gang.state.territory_municipality_codes == (ANDERLECHT,)
    assert [e.event_type for e in gang.history] == ["GangRegistered", "GangAliasAdded"]


def test_unified_commands(client):
    trigger = report(client).aggregate_id
    written = client.unify_police_command(
        police_zone_codes=[MIDI_ZONE],
        lead_authority="Mayor of Anderlecht",
        reason="wave of shootings",
        planned_end_at=hours_ago(-72),
        triggering_incident_ids=[trigger],
    )
    client.end_unified_command(command_id=written.aggregate_id, reason="calm again")
    command = client.get_unified_command(command_id=written.aggregate_id).state
    assert command.status is CommandStatus.ENDED
    assert set(command.municipality_codes) == {"21001", "21007", "21013"}
    assert command.triggering_incident_ids == (trigger,)
    assert command.ended_at is not None
    assert command.end_reason == "calm again"


def test_asset_cases_in_cents_with_their_currency(client):
    gang_id = client.register_gang(name="Clan Y").aggregate_id
    case_id = client.record_asset_seizure(
        occurred_at=hours_ago(30),
        case_reference="BR.21.L1.000042/24",
        municipality_code=ANDERLECHT,
        gang_id=gang_id,
        items=[
            AssetItem(AssetKind.CASH, 5_000_000, "banknotes"),
            AssetItem(AssetKind.DRUGS, 2_000_000, "cocaine", weight_kg=4.5),
        ],
    ).aggregate_id
    client.confiscate_assets(
        case_id=case_id, amount_cents=4_000_000, court="Tribunal", decision_reference="JUG-1"
    )
    youth = Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth sports Anderlecht")
    client.reinvest_assets(case_id=case_id, amount_cents=1_000_000, beneficiary=youth)
    client.release_assets(
        case_id=case_id,
        amount_cents=500_000,
        court="Cour d'appel",
        decision_reference="ARR-2",
        reason="owner's share",
    )
    fetched = client.get_asset_case(case_id=case_id)
    case = fetched.state
    assert case.currency == "EUR"
    assert (case.seized_value_cents, case.confiscated_value_cents) == (7_000_000, 4_000_000)
    assert (case.reinvested_value_cents, case.released_value_cents) == (1_000_000, 500_000)
    assert case.available_value_cents == 2_500_000
    (seizure,) = case.seizures
    assert seizure.gang_id == gang_id
    assert seizure.items[1] == AssetItem(AssetKind.DRUGS, 2_000_000, "cocaine", weight_kg=4.5)
    assert case.reinvestments[0].beneficiary == youth
    assert case.releases[0].reason == "owner's share"
    reinvested = [e.payload for e in fetched.history if isinstance(e.payload, AssetsReinvested)]
    assert reinvested == [AssetsReinvested(1_000_000, youth, "")]
