"""The asset recovery ledger as a pure fold: movements, local periods and the pro rata split.

Events are stand-ins with the attributes the projection reads (the domain's events carry the
same names), so these tests need neither a store nor a running application.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from projections.assets import (
    CONFISCATED,
    REINVESTED,
    RELEASED,
    SEIZED,
    AssetLedgerBatch,
    CaseState,
    split_pro_rata,
)
from projections.base import Recorded
from service.areas import load_catalog
from service.domain.values import AssetItem, AssetKind, Beneficiary, BeneficiaryKind

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST = "21001", "21007"
GANG = UUID(int=42)
JUNE_1 = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def item(kind: AssetKind, cents: int) -> AssetItem:
    return AssetItem(
        kind=kind, description="lot", estimated_value_cents=cents, quantity=1, weight_kg=0
    )


class Log:
    """Numbers stand-in events of one case like the log does."""

    def __init__(self, case_id: UUID | None = None) -> None:
        self.case_id = case_id or uuid4()
        self.position = 0

    def __call__(self, event_type: str, **attributes: Any) -> Recorded:
        self.position += 1
        event = SimpleNamespace(occurred_at=JUNE_1, **attributes)
        return Recorded(
            position=self.position,
            event_type=event_type,
            originator_id=self.case_id,
            originator_version=self.position,
            event=event,
        )

    def opened(self, reference: str = "BR.21.L1.1") -> Recorded:
        return self("AssetCaseOpened", case_reference=reference)

    def seized(
        self, municipality: str, gang: UUID | None, *items: AssetItem, **extra: Any
    ) -> Recorded:
        return self(
            "AssetsSeized", municipality_code=municipality, gang_id=gang, items=items, **extra
        )

    def decided(self, event_type: str, cents: int, **extra: Any) -> Recorded:
        return self(event_type, amount_cents=cents, **extra)


def fold(*events: Recorded, known: dict[UUID, CaseState] | None = None) -> AssetLedgerBatch:
    batch = AssetLedgerBatch(BRUSSELS, known or {})
    for recorded in events:
        batch.apply(recorded)
    return batch


def lines(batch: AssetLedgerBatch) -> list[tuple[str, int, str, str, str, str]]:
    """(movement, cents, asset kind, gang, municipality, beneficiary name) of each movement."""
    return [
        (m.kind, m.amount_cents, m.asset_kind, m.gang_id, m.municipality_code, m.beneficiary_name)
        for m in batch.movements
    ]


# --- The split --------------------------------------------------------------------------------


def test_a_split_gives_the_cents_left_over_to_the_largest_remainders():
    assert split_pro_rata(100, {"a": 100, "b": 200}) == {"a": 33, "b": 67}
    assert split_pro_rata(50, {"a": 100, "b": 200}) == {"a": 17, "b": 33}
    # Ties go to the smallest key; parts of 0 and weights of 0 are left out.
    assert split_pro_rata(1, {"b": 1, "a": 1}) == {"a": 1}
    assert split_pro_rata(10, {"a": 0, "b": 3}) == {"b": 10}
    assert split_pro_rata(10, {"a": 0}) == {}
    assert split_pro_rata(0, {"a": 5}) == {}


@given(
    st.integers(min_value=0, max_value=10**15),
    st.dictionaries(st.text(max_size=3), st.integers(min_value=0, max_value=10**12), max_size=8),
)
def test_a_split_adds_up_and_each_part_is_within_a_cent_of_its_exact_share(amount, weights):
    parts = split_pro_rata(amount, weights)
    total = sum(weights.values())
    if total == 0 or amount == 0:
        assert parts == {}
        return
    assert sum(parts.values()) == amount
    for key, weight in weights.items():
        exact = amount * weight / total
        assert abs(parts.get(key, 0) - exact) < 1 + 1e-6 * max(1.0, exact)
    assert split_pro_rata(amount, dict(reversed(list(weights.items())))) == parts


# --- Movements --------------------------------------------------------------------------------


def test_a_seizure_makes_one_movement_per_asset_kind_with_its_gang_and_municipality():
    log = Log()
    batch = fold(
        log.opened("BR.21.L1.7"),
        log.seized(
            ANDERLECHT,
            GANG,
            item(AssetKind.VEHICLE, 300),
            item(AssetKind.CASH, 100),
            item(AssetKind.VEHICLE, 50),
        ),
    )
    assert lines(batch) == [
        (SEIZED, 100, "cash", str(GANG), ANDERLECHT, ""),
        (SEIZED, 350, "vehicle", str(GANG), ANDERLECHT, ""),
    ]
    assert [(m.position, m.seq) for m in batch.movements] == [(2, 0), (2, 1)]
    assert {m.case_reference for m in batch.movements} == {"BR.21.L1.7"}
    assert batch.opened == {log.case_id}
    assert batch.cases[log.case_id].seized == {(str(GANG), ANDERLECHT): 450}


def test_decisions_carry_no_asset_kind_and_follow_the_value_seized_by_origin():
    log = Log()
    police = Beneficiary(BeneficiaryKind.LAW_ENFORCEMENT, "Police fédérale")
    batch = fold(
        log.opened(),
        log.seized(ANDERLECHT, GANG, item(AssetKind.CASH, 100)),
        log.seized(FOREST, None, item(AssetKind.REAL_ESTATE, 200)),
        log.decided("AssetsConfiscated", 100),
        log.decided("AssetsReinvested", 50, beneficiary=police),
        log.decided("AssetsReleased", 3),
    )
    assert lines(batch)[2:] == [
        # Each decision's parts in the order of their origin: no gang sorts first.
        (CONFISCATED, 67, "", "", FOREST, ""),
        (CONFISCATED, 33, "", str(GANG), ANDERLECHT, ""),
        (REINVESTED, 33, "", "", FOREST, "Police fédérale"),
        (REINVESTED, 17, "", str(GANG), ANDERLECHT, "Police fédérale"),
        (RELEASED, 2, "", "", FOREST, ""),
        (RELEASED, 1, "", str(GANG), ANDERLECHT, ""),
    ]
    reinvested = [m for m in batch.movements if m.kind == REINVESTED]
    assert {m.beneficiary_kind for m in reinvested} == {"law_enforcement"}


def test_a_case_known_from_earlier_batches_is_split_as_stored_and_not_changed_in_place():
    log = Log()
    known = {log.case_id: CaseState("BR.1", {(str(GANG), ANDERLECHT): 1, ("", FOREST): 3})}
    batch = fold(log.decided("AssetsConfiscated", 8), known=known)
    assert lines(batch) == [
        (CONFISCATED, 6, "", "", FOREST, ""),
        (CONFISCATED, 2, "", str(GANG), ANDERLECHT, ""),
    ]
    assert {m.case_reference for m in batch.movements} == {"BR.1"}
    assert batch.opened == set()

    batch = fold(log.seized(FOREST, None, item(AssetKind.CASH, 4)), known=known)
    assert batch.cases[log.case_id].seized[("", FOREST)] == 7
    assert known[log.case_id].seized[("", FOREST)] == 3


def test_an_amount_of_a_case_without_seized_value_stays_in_the_ledger_without_an_origin():
    log = Log()
    batch = fold(log.decided("AssetsConfiscated", 5))
    assert lines(batch) == [(CONFISCATED, 5, "", "", "", "")]
    assert batch.movements[0].case_reference == ""  # opened before the ledger started


def test_movements_carry_the_local_periods_of_their_business_time():
    log = Log()
    new_year = log("AssetsReleased", amount_cents=1)
    new_year.event.occurred_at = datetime(2023, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 in Brussels
    (movement,) = fold(new_year).movements
    assert dict(movement.periods) == {
        "day": "2024-01-01",
        "week": "2024-W01",
        "month": "2024-01",
        "year": "2024",
    }
    assert movement.occurred_at == datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
