"""The AssetCase aggregate on its own: seizures, court decisions, reinvestment, replay."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from service.domain.asset_case import AssetCase, SeizureRecord, case_id
from service.domain.base import recording_metadata
from service.domain.errors import RuleViolatedError
from service.domain.values import AssetItem, AssetKind, Beneficiary, BeneficiaryKind

T0 = datetime(2024, 2, 1, tzinfo=UTC)
CASH = AssetItem(AssetKind.CASH, "banknotes", 6_000, 1, 0.0)
COKE = AssetItem(AssetKind.DRUGS, "cocaine", 4_000, 3, 1.5)
SCHOOL = Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth club")


def collected(aggregate: Any) -> list[Any]:
    """Take the aggregate's pending events (typed loosely: event attributes are dynamic)."""
    return list(aggregate.collect_events())


def opened(reference: str = "BR.12.34/24") -> AssetCase:
    case = AssetCase(occurred_at=T0, case_reference=reference)
    collected(case)
    return case


def seized(*items: AssetItem) -> AssetCase:
    """A case holding one seizure of the given items (default: 10,000 cents)."""
    case = opened()
    case.record_seizure(
        occurred_at=T0,
        municipality_code="21004",
        gang_id=None,
        incident_ids=(),
        items=items or (CASH, COKE),
        description="raid",
    )
    collected(case)
    return case


def confiscated(amount: int) -> AssetCase:
    case = seized()
    case.confiscate(occurred_at=T0, amount_cents=amount, court="Brussels", decision_reference="D")
    collected(case)
    return case


def refused(case: AssetCase, call: Any) -> RuleViolatedError:
    """The call must break a rule and leave the case exactly as it was."""
    before = copy.deepcopy(case)
    with pytest.raises(RuleViolatedError) as info:
        call()
    assert case == before
    assert case.version == before.version
    assert case.pending_events == []
    return info.value


def test_a_case_id_is_derived_from_its_trimmed_reference() -> None:
    case = AssetCase(occurred_at=T0, case_reference="BR.12.34/24")
    (event,) = collected(case)
    assert type(event).__qualname__ == "AssetCase.AssetCaseOpened"
    assert case.id == case_id("BR.12.34/24") == case_id("  BR.12.34/24 ")
    assert case_id("BR.12.34/24") != case_id("BR.12.34/25")
    assert (case.seized_cents, case.confiscated_cents, case.available_cents) == (0, 0, 0)


def test_recording_a_seizure_adds_its_items_value_to_the_case() -> None:
    case = opened()
    gang_id, incident_id = uuid4(), uuid4()
    case.record_seizure(
        occurred_at=T0,
        municipality_code="21004",
        gang_id=gang_id,
        incident_ids=(incident_id,),
        items=(CASH, COKE),
        description="raid",
    )
    (event,) = collected(case)
    assert type(event).__qualname__ == "AssetCase.AssetsSeized"
    assert case.seizures == [
        SeizureRecord(T0, "21004", gang_id, (incident_id,), (CASH, COKE), "raid")
    ]
    assert case.seized_cents == 10_000
    assert case.version == 2


def test_confiscation_may_reach_but_not_exceed_the_value_seized() -> None:
    case = seized()
    case.confiscate(occurred_at=T0, amount_cents=7_000, court="C", decision_reference="D1")
    case.confiscate(occurred_at=T0, amount_cents=3_000, court="C", decision_reference="D2")
    assert [type(e).__name__ for e in collected(case)] == ["AssetsConfiscated"] * 2
    assert case.confiscated_cents == case.seized_cents == 10_000
    error = refused(
        case,
        lambda: case.confiscate(occurred_at=T0, amount_cents=1, court="C", decision_reference="D3"),
    )
    assert error.rule == "confiscated_within_seized"
    assert error.subject == f"asset_case/{case.id}"


def test_reinvesting_and_releasing_draw_on_the_confiscated_value() -> None:
    case = confiscated(8_000)
    case.reinvest(occurred_at=T0, amount_cents=5_000, beneficiary=SCHOOL, note="gym")
    case.release(
        occurred_at=T0, amount_cents=3_000, court="C", decision_reference="D9", reason="appeal"
    )
    assert [type(e).__name__ for e in collected(case)] == ["AssetsReinvested", "AssetsReleased"]
    assert (case.reinvested_cents, case.released_cents, case.available_cents) == (5_000, 3_000, 0)
    assert case.releases[0].reason == "appeal"
    assert case.reinvestments[0].beneficiary == SCHOOL


@pytest.mark.parametrize("action", ["reinvest", "release"])
def test_reinvested_plus_released_cannot_exceed_the_confiscated_value(action: str) -> None:
    case = confiscated(8_000)
    case.reinvest(occurred_at=T0, amount_cents=6_000, beneficiary=SCHOOL, note="")
    collected(case)

    def over_by_one() -> None:
        if action == "reinvest":
            case.reinvest(occurred_at=T0, amount_cents=2_001, beneficiary=SCHOOL, note="")
        else:
            case.release(
                occurred_at=T0, amount_cents=2_001, court="C", decision_reference="D", reason=""
            )

    error = refused(case, over_by_one)
    assert error.rule == "reinvested_and_released_within_confiscated"


def test_nothing_can_be_reinvested_before_a_confiscation() -> None:
    case = seized()
    error = refused(
        case, lambda: case.reinvest(occurred_at=T0, amount_cents=1, beneficiary=SCHOOL, note="")
    )
    assert error.rule == "reinvested_and_released_within_confiscated"


def test_replaying_the_collected_events_rebuilds_an_equal_case() -> None:
    with recording_metadata({"actor": "magistrate"}):
        case = AssetCase(occurred_at=T0, case_reference="BR.1")
        case.record_seizure(
            occurred_at=T0,
            municipality_code="21004",
            gang_id=uuid4(),
            incident_ids=(uuid4(),),
            items=(CASH,),
            description="",
        )
        case.confiscate(occurred_at=T0, amount_cents=6_000, court="C", decision_reference="D")
        case.reinvest(occurred_at=T0, amount_cents=1_000, beneficiary=SCHOOL, note="")
        case.release(
            occurred_at=T0, amount_cents=1_000, court="C", decision_reference="E", reason=""
        )
    events = collected(case)
    assert all(e.metadata == {"actor": "magistrate"} for e in events)
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt == case
    assert rebuilt is not None
    assert rebuilt.available_cents == 4_000
