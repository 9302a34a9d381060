"""AssetRecoveryService over a real channel: seized value followed to confiscation and reuse."""

from __future__ import annotations

from uuid import uuid4

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import asset_pb2

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNKNOWN_ID = str(uuid4())
WITHIN = "reinvested_and_released_within_confiscated"


@pytest.fixture
def case_id(assets):
    """A case with 10 000 EUR seized (and 2 kg of drugs valued at 0)."""
    return assets.RecordAssetSeizure(b.seizure(), metadata=ACTOR_METADATA).result.aggregate_id


def test_first_seizure_opens_the_case_and_the_next_lands_in_it(server, assets, gangs, incidents):
    gang_id = checks.new_gang(gangs)
    incident_id = checks.new_incident(incidents)
    seized_at = b.ago(days=2)
    first = b.seizure(occurred_at=b.ts(seized_at), gang_id=gang_id, incident_ids=[incident_id])
    result = assets.RecordAssetSeizure(first, metadata=ACTOR_METADATA).result
    # Opening the case and the seizure are two events of one write.
    case_id = checks.written(server, result, version=2)

    car = asset_pb2.AssetItem(
        kind=asset_pb2.ASSET_KIND_VEHICLE,
        description="Lamborghini Urus",
        estimated_value_cents=15_000_000,
        quantity=1,
    )
    second = b.seizure(case_reference=f"  {first.case_reference} ", items=[car])
    again = assets.RecordAssetSeizure(second, metadata=ACTOR_METADATA).result
    assert checks.written(server, again, version=3) == case_id

    got = assets.GetAssetCase(b.get_case(case_id))
    case = got.asset_case
    assert (case.case_id, case.case_reference, case.currency) == (
        case_id,
        first.case_reference,
        "EUR",
    )
    assert case.seized_value_cents == 16_000_000
    assert (case.confiscated_value_cents, case.available_value_cents) == (0, 0)
    opening = case.seizures[0]
    assert (opening.gang_id, list(opening.incident_ids)) == (gang_id, [incident_id])
    assert opening.seized_at == b.ts(seized_at)
    assert list(opening.items) == list(first.items)

    types = [e.event_type for e in got.history]
    assert types == ["AssetCaseOpened", "AssetsSeized", "AssetsSeized"]
    checks.positions_increase(got.history)
    opened = checks.envelope(
        got.history[0],
        event_type="AssetCaseOpened",
        stream_type="asset_case",
        stream_id=case_id,
        stream_version=1,
        request_id=first.request_id,
        payload_field="asset_case_opened",
    )
    assert opened.case_reference == first.case_reference
    seized = checks.envelope(
        got.history[1],
        event_type="AssetsSeized",
        stream_type="asset_case",
        stream_id=case_id,
        stream_version=2,
        request_id=first.request_id,
        payload_field="assets_seized",
    )
    assert (seized.gang_id, list(seized.incident_ids)) == (gang_id, [incident_id])
    assert list(seized.items) == list(first.items)
    # Both events carry the seizure's business time, days before they were recorded.
    assert got.history[0].occurred_at == got.history[1].occurred_at == b.ts(seized_at)
    assert got.history[1].position == result.position
    assert got.history[2].position == again.position


def test_confiscate_reinvest_and_release_move_value_through_the_case(server, assets, case_id):
    steps = [
        (
            assets.ConfiscateAssets,
            b.confiscation(case_id, 600_000, expected_version=2),
            "AssetsConfiscated",
            "assets_confiscated",
        ),
        (
            assets.ReinvestAssets,
            b.reinvestment(case_id, 200_000, expected_version=3),
            "AssetsReinvested",
            "assets_reinvested",
        ),
        (
            assets.ReleaseAssets,
            b.release(case_id, 400_000, expected_version=4),
            "AssetsReleased",
            "assets_released",
        ),
    ]
    for version, (rpc, request, _, _) in enumerate(steps, start=3):
        checks.written(server, rpc(request, metadata=ACTOR_METADATA).result, version=version)

    got = assets.GetAssetCase(b.get_case(case_id))
    case = got.asset_case
    assert (case.seized_value_cents, case.confiscated_value_cents) == (1_000_000, 600_000)
    assert (case.reinvested_value_cents, case.released_value_cents) == (200_000, 400_000)
    assert case.available_value_cents == 0
    (confiscation,) = case.confiscations
    assert confiscation.amount_cents == 600_000
    assert confiscation.decision_reference == steps[0][1].decision_reference
    assert confiscation.decided_at == got.history[2].occurred_at
    (reinvested,) = case.reinvestments
    assert reinvested.beneficiary == steps[1][1].beneficiary
    assert (case.releases[0].amount_cents, case.releases[0].reason) == (
        400_000,
        "lawful origin proven",
    )

    checks.positions_increase(got.history)
    for event, (_, request, event_type, field) in zip(got.history[2:], steps, strict=True):
        payload = checks.envelope(
            event,
            event_type=event_type,
            stream_type="asset_case",
            stream_id=case_id,
            stream_version=event.stream_version,
            request_id=request.request_id,
            payload_field=field,
        )
        assert payload.amount_cents == request.amount_cents
    assert got.history[3].assets_reinvested.beneficiary.kind == (
        asset_pb2.BENEFICIARY_KIND_SOCIAL_PROGRAMME
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"occurred_at": None}, "occurred_at"),
        ({"occurred_at": b.ts(b.ago(hours=-1))}, "occurred_at"),
        ({"case_reference": " "}, "case_reference"),
        ({"municipality_code": "21999"}, "municipality_code"),
        ({"items": []}, "items"),
        ({"items": [b.cash(100, kind=asset_pb2.ASSET_KIND_UNSPECIFIED)]}, "items[0].kind"),
        ({"items": [b.cash(100), b.cash(-5)]}, "items[1].estimated_value_cents"),
        ({"items": [b.cash(100, quantity=-1)]}, "items[0].quantity"),
        ({"items": [b.cash(100, weight_kg=1.5)]}, "items[0].weight_kg"),
        (
            {"items": [b.cash(0, kind=asset_pb2.ASSET_KIND_DRUGS, weight_kg=-1)]},
            "items[0].weight_kg",
        ),
        ({"gang_id": "clan"}, "gang_id"),
        ({"incident_ids": ["x"]}, "incident_ids[0]"),
        ({"incident_ids": [UNKNOWN_ID, UNKNOWN_ID]}, "incident_ids[1]"),
    ],
)
def test_record_seizure_rejects_an_invalid_field_by_name(server, assets, overrides, field):
    checks.invalid(server, assets.RecordAssetSeizure, b.seizure(**overrides), field)


def test_record_seizure_needs_a_registered_gang_and_recorded_incidents(server, assets):
    checks.not_found(
        server,
        assets.RecordAssetSeizure,
        b.seizure(gang_id=UNKNOWN_ID),
        resource_type="gang",
        name=UNKNOWN_ID,
    )
    checks.not_found(
        server,
        assets.RecordAssetSeizure,
        b.seizure(incident_ids=[UNKNOWN_ID]),
        resource_type="incident",
        name=UNKNOWN_ID,
    )


def test_record_seizure_conflicts_on_new_and_existing_cases(server, assets):
    checks.version_conflict(
        server, assets.RecordAssetSeizure, b.seizure(expected_version=1), expected=1, actual=0
    )
    first = b.seizure()
    assets.RecordAssetSeizure(first, metadata=ACTOR_METADATA)
    for stale in (0, 1):
        request = b.seizure(case_reference=first.case_reference, expected_version=stale)
        checks.version_conflict(
            server, assets.RecordAssetSeizure, request, expected=stale, actual=2
        )
    # The first request, retried with another payload, is a reused request id.
    reuse = b.seizure(request_id=first.request_id, case_reference=first.case_reference)
    checks.request_id_reused(server, assets.RecordAssetSeizure, first, reuse)


def test_confiscating_more_than_seized_fails_its_precondition(server, assets, case_id):
    rule, subject = "confiscated_within_seized", f"asset_case/{case_id}"
    checks.precondition(
        server,
        assets.ConfiscateAssets,
        b.confiscation(case_id, 1_000_001),
        rule=rule,
        subject=subject,
    )
    # The limit is cumulative over every confiscation of the case.
    assets.ConfiscateAssets(b.confiscation(case_id, 600_000), metadata=ACTOR_METADATA)
    checks.precondition(
        server,
        assets.ConfiscateAssets,
        b.confiscation(case_id, 400_001),
        rule=rule,
        subject=subject,
    )
    assets.ConfiscateAssets(b.confiscation(case_id, 400_000), metadata=ACTOR_METADATA)


def test_reinvesting_and_releasing_more_than_confiscated_fails_its_precondition(
    server, assets, case_id
):
    subject = f"asset_case/{case_id}"
    # Nothing confiscated yet: nothing to reinvest or release.
    checks.precondition(
        server, assets.ReinvestAssets, b.reinvestment(case_id, 1), rule=WITHIN, subject=subject
    )
    assets.ConfiscateAssets(b.confiscation(case_id, 500_000), metadata=ACTOR_METADATA)
    assets.ReinvestAssets(b.reinvestment(case_id, 300_000), metadata=ACTOR_METADATA)
    # 300 000 reinvested + 200 001 released would exceed the 500 000 confiscated.
    checks.precondition(
        server, assets.ReleaseAssets, b.release(case_id, 200_001), rule=WITHIN, subject=subject
    )
    assets.ReleaseAssets(b.release(case_id, 200_000), metadata=ACTOR_METADATA)
    checks.precondition(
        server, assets.ReinvestAssets, b.reinvestment(case_id, 1), rule=WITHIN, subject=subject
    )


@pytest.mark.parametrize(
    ("rpc_name", "build", "overrides", "field"),
    [
        ("ConfiscateAssets", b.confiscation, {"amount_cents": 0}, "amount_cents"),
        ("ConfiscateAssets", b.confiscation, {"amount_cents": -100}, "amount_cents"),
        ("ConfiscateAssets", b.confiscation, {"amount_cents": 10**15 + 1}, "amount_cents"),
        ("ConfiscateAssets", b.confiscation, {"court": ""}, "court"),
        ("ConfiscateAssets", b.confiscation, {"decision_reference": " "}, "decision_reference"),
        ("ConfiscateAssets", b.confiscation, {"case_id": "BR.21"}, "case_id"),
        ("ReinvestAssets", b.reinvestment, {"amount_cents": 0}, "amount_cents"),
        (
            "ReinvestAssets",
            b.reinvestment,
            {"beneficiary": asset_pb2.Beneficiary(name="Police")},
            "beneficiary.kind",
        ),
        (
            "ReinvestAssets",
            b.reinvestment,
            {"beneficiary": asset_pb2.Beneficiary(kind=asset_pb2.BENEFICIARY_KIND_LAW_ENFORCEMENT)},
            "beneficiary.name",
        ),
        ("ReinvestAssets", b.reinvestment, {"note": "x" * 10_001}, "note"),
        ("ReinvestAssets", b.reinvestment, {"occurred_at": b.ts(b.ago(hours=-1))}, "occurred_at"),
        ("ReleaseAssets", b.release, {"amount_cents": -1}, "amount_cents"),
        ("ReleaseAssets", b.release, {"court": ""}, "court"),
        ("ReleaseAssets", b.release, {"decision_reference": ""}, "decision_reference"),
        ("ReleaseAssets", b.release, {"request_id": ""}, "request_id"),
    ],
)
def test_court_decisions_and_reinvestments_reject_an_invalid_field_by_name(
    server, assets, case_id, rpc_name, build, overrides, field
):
    checks.invalid(server, getattr(assets, rpc_name), build(case_id, 100, **overrides), field)


@pytest.mark.parametrize(
    ("rpc_name", "build"),
    [
        ("ConfiscateAssets", b.confiscation),
        ("ReinvestAssets", b.reinvestment),
        ("ReleaseAssets", b.release),
    ],
)
def test_court_decisions_and_reinvestments_not_found_conflict_and_reuse(
    server, assets, incidents, case_id, rpc_name, build
):
    rpc = getattr(assets, rpc_name)
    assets.ConfiscateAssets(b.confiscation(case_id, 500_000), metadata=ACTOR_METADATA)
    incident_id = checks.new_incident(incidents)
    for missing in (UNKNOWN_ID, incident_id):
        checks.not_found(server, rpc, build(missing, 100), resource_type="asset_case", name=missing)
    checks.version_conflict(
        server, rpc, build(case_id, 100, expected_version=2), expected=2, actual=3
    )
    first = build(case_id, 100)
    checks.request_id_reused(server, rpc, first, build(case_id, 101, request_id=first.request_id))


def test_get_asset_case_rejects_malformed_and_unknown_ids(server, assets, gangs):
    err = checks.rejected(server, assets.GetAssetCase, b.get_case("BR.21.L1.1"), INVALID)
    assert list(field_violations(err)) == ["case_id"]
    gang_id = checks.new_gang(gangs)
    for missing in (UNKNOWN_ID, gang_id):
        checks.not_found(
            server,
            assets.GetAssetCase,
            b.get_case(missing),
            resource_type="asset_case",
            name=missing,
        )
