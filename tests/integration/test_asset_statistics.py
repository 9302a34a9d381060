"""AssetStatisticsService over a real channel, on SQLite and on PostgreSQL.

Asset cases are followed from seizure to confiscation, reinvestment and release through
AssetRecoveryService and read back from the asset recovery ledger with min_position: amounts
by period, asset kind, gang, beneficiary and municipality with their totals and the share
reinvested, the split of a case's decisions over its seizures' origins, rejected requests, and
a ledger rebuilt from the log that equals the live one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import asset_pb2
from incident_registry_client.proto.incidents.v1 import asset_statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as stats_pb
from incident_registry_client.proto.incidents.v1.asset_statistics_service_pb2_grpc import (
    AssetStatisticsServiceStub,
)

from projections.assets_model import AssetRecoveryProjection, ledger
from projections.store import ViewStore, sqlite_store
from service.areas import load_catalog
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.projections import run_to_head, runner_for
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST, BRUXELLES = "21001", "21007", "21004"
PERIOD = pb.ASSET_RECOVERY_GROUPING_PERIOD
KIND = pb.ASSET_RECOVERY_GROUPING_ASSET_KIND
GANG = pb.ASSET_RECOVERY_GROUPING_GANG
BENEFICIARY = pb.ASSET_RECOVERY_GROUPING_BENEFICIARY
MUNICIPALITY = pb.ASSET_RECOVERY_GROUPING_MUNICIPALITY
DAY, WEEK, MONTH, YEAR = (
    stats_pb.PERIOD_KIND_DAY,
    stats_pb.PERIOD_KIND_ISO_WEEK,
    stats_pb.PERIOD_KIND_MONTH,
    stats_pb.PERIOD_KIND_YEAR,
)
CASH, VEHICLE, REAL_ESTATE, DRUGS, CRYPTO = (
    asset_pb2.ASSET_KIND_CASH,
    asset_pb2.ASSET_KIND_VEHICLE,
    asset_pb2.ASSET_KIND_REAL_ESTATE,
    asset_pb2.ASSET_KIND_DRUGS,
    asset_pb2.ASSET_KIND_CRYPTO,
)
POLICE = asset_pb2.Beneficiary(
    kind=asset_pb2.BENEFICIARY_KIND_LAW_ENFORCEMENT, name="Police fédérale"
)
YOUTH = asset_pb2.Beneficiary(
    kind=asset_pb2.BENEFICIARY_KIND_SOCIAL_PROGRAMME, name="Youth sports Anderlecht"
)
WAIT = 10.0


def at(month, day, hour=10):
    return b.ts(datetime(2024, month, day, hour, tzinfo=UTC))


def item(kind, cents, **extra):
    return asset_pb2.AssetItem(
        kind=kind, description="lot", estimated_value_cents=cents, quantity=1, **extra
    )


@pytest.fixture
def statistics(channel):
    return AssetStatisticsServiceStub(channel)


@pytest.fixture
def gang_id(gangs):
    return gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.aggregate_id


def seize(assets, when, municipality, items, gang="", reference=""):
    """Record a seizure; return (case id, log position)."""
    request = b.seizure(
        occurred_at=when, municipality_code=municipality, items=items, gang_id=gang or None
    )
    if reference:
        request.case_reference = reference
    result = assets.RecordAssetSeizure(request, metadata=ACTOR_METADATA).result
    return result.aggregate_id, result.position


def reference_of(assets, case_id):
    return assets.GetAssetCase(b.get_case(case_id)).asset_case.case_reference


def confiscate(assets, case_id, cents, when):
    request = b.confiscation(case_id, cents, occurred_at=when)
    return assets.ConfiscateAssets(request, metadata=ACTOR_METADATA).result.position


def reinvest(assets, case_id, cents, when, beneficiary):
    request = b.reinvestment(case_id, cents, occurred_at=when, beneficiary=beneficiary)
    return assets.ReinvestAssets(request, metadata=ACTOR_METADATA).result.position


def release(assets, case_id, cents, when):
    request = b.release(case_id, cents, occurred_at=when)
    return assets.ReleaseAssets(request, metadata=ACTOR_METADATA).result.position


def get(statistics, group_by, min_position=0, **selection):
    return statistics.GetAssetRecoveryStatistics(
        pb.GetAssetRecoveryStatisticsRequest(
            group_by=group_by, min_position=min_position, **selection
        ),
        timeout=WAIT,
    )


def amounts(message):
    return (
        message.seized_value_cents,
        message.confiscated_value_cents,
        message.reinvested_value_cents,
        message.released_value_cents,
    )


def key(row, group_by):
    if group_by == PERIOD:
        return row.period
    if group_by == KIND:
        return row.asset_kind
    if group_by == GANG:
        return row.gang_id
    if group_by == BENEFICIARY:
        return (row.beneficiary.kind, row.beneficiary.name)
    return row.municipality_code


def rows(reply, group_by):
    """Row key -> (seized, confiscated, reinvested, released), in the served order."""
    return {key(row, group_by): amounts(row) for row in reply.rows}


def two_cases(assets, gang_id):
    """Case A (the gang, Anderlecht) and case B (no gang, Bruxelles); return the last position."""
    case_a, _ = seize(
        assets,
        at(5, 31),
        ANDERLECHT,
        [item(CASH, 1_000_000), item(VEHICLE, 500_000), item(DRUGS, 0, weight_kg=2.0)],
        gang=gang_id,
    )
    confiscate(assets, case_a, 1_200_000, at(6, 15))
    reinvest(assets, case_a, 300_000, at(7, 1), YOUTH)
    reinvest(assets, case_a, 200_000, at(7, 2), POLICE)
    release(assets, case_a, 100_000, at(7, 3))
    case_b, _ = seize(assets, at(6, 3), BRUXELLES, [item(REAL_ESTATE, 2_000_000)])
    confiscate(assets, case_b, 1_000_000, at(6, 20))
    return reinvest(assets, case_b, 500_000, at(7, 10), YOUTH)


# --- Each grouping, with its totals ---------------------------------------------------------


def test_seized_confiscated_reinvested_and_released_values_by_each_grouping(
    assets, statistics, gang_id
):
    last = two_cases(assets, gang_id)
    everything = (3_500_000, 2_200_000, 1_000_000, 100_000)
    replies = {
        group_by: get(statistics, group_by, last, period_kind=MONTH)
        for group_by in (PERIOD, KIND, GANG, BENEFICIARY, MUNICIPALITY)
    }
    for reply in replies.values():
        assert reply.position >= last
        assert reply.currency == "EUR"
        # Every grouping's rows add up to the same totals.
        assert amounts(reply.totals) == everything
        assert reply.totals.reinvested_share == pytest.approx(1_000_000 / 2_200_000)

    assert rows(replies[PERIOD], PERIOD) == {
        "2024-05": (1_500_000, 0, 0, 0),
        "2024-06": (2_000_000, 2_200_000, 0, 0),
        "2024-07": (0, 0, 1_000_000, 100_000),
    }
    # Decisions name no items: their amounts are in the unattributed row, listed first.
    assert list(rows(replies[KIND], KIND).items()) == [
        (asset_pb2.ASSET_KIND_UNSPECIFIED, (0, 2_200_000, 1_000_000, 100_000)),
        (CASH, (1_000_000, 0, 0, 0)),
        (VEHICLE, (500_000, 0, 0, 0)),
        (REAL_ESTATE, (2_000_000, 0, 0, 0)),
        (DRUGS, (0, 0, 0, 0)),  # seized, without an estimated value
    ]
    assert list(rows(replies[GANG], GANG).items()) == [
        ("", (2_000_000, 1_000_000, 500_000, 0)),  # case B is linked to no gang
        (gang_id, (1_500_000, 1_200_000, 500_000, 100_000)),
    ]
    assert list(rows(replies[BENEFICIARY], BENEFICIARY).items()) == [
        ((asset_pb2.BENEFICIARY_KIND_UNSPECIFIED, ""), (3_500_000, 2_200_000, 0, 100_000)),
        ((POLICE.kind, POLICE.name), (0, 0, 200_000, 0)),
        ((YOUTH.kind, YOUTH.name), (0, 0, 800_000, 0)),
    ]
    assert rows(replies[MUNICIPALITY], MUNICIPALITY) == {
        ANDERLECHT: (1_500_000, 1_200_000, 500_000, 100_000),
        BRUXELLES: (2_000_000, 1_000_000, 500_000, 0),
    }


def test_each_write_is_read_back_with_min_position(assets, statistics, gang_id):
    case_id, seized = seize(assets, at(5, 31), ANDERLECHT, [item(CASH, 40_000)], gang=gang_id)
    reply = get(statistics, GANG, seized)
    assert rows(reply, GANG) == {gang_id: (40_000, 0, 0, 0)}
    assert reply.totals.reinvested_share == 0  # nothing confiscated yet

    position = confiscate(assets, case_id, 30_000, at(6, 1))
    assert rows(get(statistics, GANG, position), GANG) == {gang_id: (40_000, 30_000, 0, 0)}
    position = reinvest(assets, case_id, 12_000, at(6, 2), POLICE)
    reply = get(statistics, GANG, position)
    assert rows(reply, GANG) == {gang_id: (40_000, 30_000, 12_000, 0)}
    assert reply.totals.reinvested_share == pytest.approx(0.4)
    position = release(assets, case_id, 18_000, at(6, 3))
    reply = get(statistics, MUNICIPALITY, position)
    assert rows(reply, MUNICIPALITY) == {ANDERLECHT: (40_000, 30_000, 12_000, 18_000)}
    assert reply.totals.reinvested_share == pytest.approx(0.4)


# --- Selections ---------------------------------------------------------------------------


def test_period_range_municipality_and_gang_select_movements(assets, statistics, gang_id):
    last = two_cases(assets, gang_id)
    july = get(
        statistics, GANG, last, period_kind=MONTH, from_period="2024-07", to_period="2024-07"
    )
    assert rows(july, GANG) == {
        "": (0, 0, 500_000, 0),
        gang_id: (0, 0, 500_000, 100_000),
    }
    # Value confiscated in June was reinvested in July: the share is of the selection only.
    assert july.totals.reinvested_share == 0
    since_june = get(statistics, PERIOD, last, period_kind=MONTH, from_period="2024-06")
    assert list(rows(since_june, PERIOD)) == ["2024-06", "2024-07"]
    assert since_june.totals.reinvested_share == pytest.approx(1_000_000 / 2_200_000)
    # ISO weeks: Friday 31 May is in week 22, Monday 3 June in week 23.
    weeks = get(statistics, KIND, last, period_kind=WEEK, to_period="2024-W22")
    assert rows(weeks, KIND) == {
        CASH: (1_000_000, 0, 0, 0),
        VEHICLE: (500_000, 0, 0, 0),
        DRUGS: (0, 0, 0, 0),
    }

    gang_only = get(statistics, MUNICIPALITY, last, gang_ids=[gang_id])
    assert rows(gang_only, MUNICIPALITY) == {ANDERLECHT: (1_500_000, 1_200_000, 500_000, 100_000)}
    bruxelles = get(statistics, PERIOD, last, period_kind=YEAR, municipality_codes=[BRUXELLES])
    assert rows(bruxelles, PERIOD) == {"2024": (2_000_000, 1_000_000, 500_000, 0)}
    assert rows(get(statistics, GANG, last, municipality_codes=[FOREST]), GANG) == {}


def test_the_local_day_not_the_utc_day_is_the_period(assets, statistics):
    # 23:30 UTC on Sunday 31 Dec 2023 is 00:30 on Monday 1 Jan 2024 in Brussels.
    _, position = seize(
        assets, b.ts(datetime(2023, 12, 31, 23, 30, tzinfo=UTC)), ANDERLECHT, [item(CASH, 5)]
    )
    for period_kind, period in ((DAY, "2024-01-01"), (WEEK, "2024-W01"), (YEAR, "2024")):
        reply = get(statistics, PERIOD, position, period_kind=period_kind)
        assert rows(reply, PERIOD) == {period: (5, 0, 0, 0)}


def test_a_case_seized_in_two_places_splits_its_decisions_by_value_seized(
    assets, statistics, gang_id
):
    # One case: a third of the value seized in Anderlecht (the gang), two thirds in Forest.
    case_id, _ = seize(assets, at(3, 1), ANDERLECHT, [item(CASH, 100)], gang=gang_id)
    reference = reference_of(assets, case_id)
    same, _ = seize(assets, at(3, 2), FOREST, [item(VEHICLE, 200)], reference=reference)
    assert same == case_id
    position = confiscate(assets, case_id, 100, at(4, 1))
    # 33.3 and 66.7 cents: the cent left over goes to the larger remainder.
    assert rows(get(statistics, MUNICIPALITY, position), MUNICIPALITY) == {
        ANDERLECHT: (100, 33, 0, 0),
        FOREST: (200, 67, 0, 0),
    }
    position = reinvest(assets, case_id, 50, at(4, 2), YOUTH)
    reply = get(statistics, GANG, position)
    assert rows(reply, GANG) == {"": (200, 67, 33, 0), gang_id: (100, 33, 17, 0)}
    assert amounts(reply.totals) == (300, 100, 50, 0)


# --- Rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "fields"),
    [
        ({"group_by": 0}, {"group_by"}),
        ({"group_by": 42}, {"group_by"}),
        ({"group_by": PERIOD}, {"period_kind"}),
        ({"group_by": GANG, "from_period": "2024-06"}, {"period_kind"}),
        ({"group_by": GANG, "period_kind": 9}, {"period_kind"}),
        (
            {"group_by": PERIOD, "period_kind": MONTH, "from_period": "2024-6", "to_period": "24"},
            {"from_period", "to_period"},
        ),
        (
            {
                "group_by": PERIOD,
                "period_kind": WEEK,
                "from_period": "2024-W30",
                "to_period": "2024-W02",
            },
            {"to_period"},
        ),
        ({"group_by": PERIOD, "period_kind": DAY, "from_period": "2024-06"}, {"from_period"}),
        (
            {"group_by": MUNICIPALITY, "municipality_codes": ["21001", "75056"], "gang_ids": ["x"]},
            {"municipality_codes[1]", "gang_ids[0]"},
        ),
        ({"group_by": 0, "min_position": -1}, {"group_by", "min_position"}),
    ],
)
def test_invalid_requests_are_invalid_arguments_naming_every_field(statistics, selection, fields):
    with pytest.raises(grpc.RpcError) as failure:
        statistics.GetAssetRecoveryStatistics(
            pb.GetAssetRecoveryStatisticsRequest(**selection), timeout=WAIT
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == fields


def test_min_position_beyond_the_head_is_out_of_range(assets, statistics):
    empty = get(statistics, KIND)
    assert (list(empty.rows), amounts(empty.totals), empty.position) == ([], (0, 0, 0, 0), 0)
    _, head = seize(assets, at(5, 1), ANDERLECHT, [item(CASH, 1)])
    with pytest.raises(grpc.RpcError) as failure:
        get(statistics, KIND, head + 1)
    assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert set(field_violations(failure.value)) == {"min_position"}


# --- Rebuild equivalence ------------------------------------------------------------------


def served(statistics, min_position):
    """Every grouping's rows and totals, as served."""
    return {
        (group_by, period_kind): (rows(reply, group_by), amounts(reply.totals))
        for group_by in (KIND, GANG, BENEFICIARY, MUNICIPALITY, PERIOD)
        for period_kind in (DAY, WEEK, MONTH, YEAR)
        for reply in [get(statistics, group_by, min_position, period_kind=period_kind)]
    }


def whole_ledger(store: ViewStore) -> list[tuple[object, ...]]:
    with store.transaction(write=False) as tx:
        return ledger(tx)


def test_the_live_ledger_equals_one_rebuilt_from_the_log(
    server, assets, gangs, statistics, gang_id, tmp_path
):
    two_cases(assets, gang_id)
    codes = sorted(BRUSSELS.municipalities)
    for n in range(6):
        case_id, _ = seize(
            assets,
            at(1 + n, 1 + n),
            codes[n % 4],
            [item(CASH, 10_000 * (n + 1)), item(VEHICLE, 7_777 * n)],
            gang=gang_id if n % 2 else "",
        )
        reference = reference_of(assets, case_id)
        seize(assets, at(1 + n, 2 + n), codes[n % 3], [item(CRYPTO, 3_333)], reference=reference)
        confiscate(assets, case_id, 5_001 * (n + 1), at(7, 1 + n))
        reinvest(assets, case_id, 1_001 * n + 1, at(7, 15 + n), YOUTH if n % 2 else POLICE)
        release(assets, case_id, 999, at(8, 1 + n))
    # The last write is of no interest to the ledger: min_position still works.
    head = gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.position
    before = served(statistics, head)

    registry = server.registry
    view = sqlite_store(tmp_path / "rebuilt.sqlite")
    try:
        runner = runner_for(
            registry.backend, registry.mapper, view, AssetRecoveryProjection(BRUSSELS), page_size=5
        )
        position, pages = run_to_head(runner)
        assert position == registry.backend.head()
        assert pages > 3
        rebuilt = whole_ledger(view)
    finally:
        view.close()
    live = whole_ledger(server.projections.store)
    assert len(live) > 40
    assert [tuple(row) for row in rebuilt] == [tuple(row) for row in live]
    assert served(statistics, head) == before
