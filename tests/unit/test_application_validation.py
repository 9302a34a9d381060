"""Request validation: every rule names the offending field path and nothing is written."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest

from service.app.commands import (
    AddGangAlias,
    AmendIncident,
    AttributeToGang,
    ConfiscateAssets,
    EndUnifiedCommand,
    LinkIncidents,
    RegisterGang,
    ReinvestAssets,
    ReleaseAssets,
    RetractAttribution,
    ReviseCasualties,
)
from service.domain.errors import InvalidArgumentError
from service.domain.values import (
    AssetItem,
    AssetKind,
    AttributionStatus,
    Beneficiary,
    BeneficiaryKind,
    GeoPoint,
    LinkKind,
    Source,
    SourceKind,
    Weapon,
    WeaponKind,
)
from tests.unit.app_driver import NOW, App, registries

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

Call = Callable[[App], Coroutine[Any, Any, Any]]

ID, OTHER = uuid4(), uuid4()
FUTURE = NOW + timedelta(minutes=2)  # beyond the one minute of tolerated clock skew
PARIS = GeoPoint(48.8566, 2.3522)
GUN = Weapon(WeaponKind.HANDGUN, 1)
SCHOOL = Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth club")


def report(**kw: Any) -> Call:
    return lambda a: a.registry.incidents.report_shooting(a.shooting(**kw), a.ctx())


def amend(corrections: dict[str, Any], reason: str = "r") -> Call:
    command = AmendIncident(ID, corrections, reason)
    return lambda a: a.registry.incidents.amend(command, a.ctx())


def attribute(confidence: float = 0.5, basis: str = "b") -> Call:
    command = AttributeToGang(ID, OTHER, confidence, AttributionStatus.SUSPECTED, basis)
    return lambda a: a.registry.incidents.attribute_to_gang(command, a.ctx())


def register(name: str = "Kings", **kw: Any) -> Call:
    return lambda a: a.registry.gangs.register(RegisterGang(name=name, **kw), a.ctx())


def unify(*codes: str, **kw: Any) -> Call:
    return lambda a: a.registry.police_commands.unify(a.unification(*codes, **kw), a.ctx())


def seize(**kw: Any) -> Call:
    return lambda a: a.registry.asset_cases.record_seizure(a.seizure(**kw), a.ctx())


def item(kind: AssetKind = AssetKind.CASH, value: int = 100, qty: int = 1, kg: float = 0.0) -> Any:
    return AssetItem(kind, "lot", value, qty, kg)


def confiscate(amount: int = 1, court: str = "c", ref: str = "d") -> Call:
    command = ConfiscateAssets(ID, amount, court, ref)
    return lambda a: a.registry.asset_cases.confiscate(command, a.ctx())


CASES: dict[str, tuple[Call, list[str]]] = {
    # ReportShooting
    "weapon count below one": (
        report(weapons=(Weapon(WeaponKind.SHOTGUN, 0),)),
        ["weapons[0].count"],
    ),
    "weapon kind twice": (report(weapons=(GUN, GUN)), ["weapons[1]"]),
    "location outside the catalog": (report(location=PARIS), ["location"]),
    "location not finite": (report(location=GeoPoint(math.nan, 4.35)), ["location"]),
    "unknown municipality": (report(municipality_code="75056"), ["municipality_code"]),
    "missing municipality": (report(municipality_code=""), ["municipality_code"]),
    "occurred in the future": (report(occurred_at=FUTURE), ["occurred_at", "occurred_at"]),
    "occurred after reported": (
        report(occurred_at=NOW - timedelta(hours=1), reported_at=NOW - timedelta(hours=2)),
        ["occurred_at"],
    ),
    "reported in the future": (report(reported_at=FUTURE), ["reported_at"]),
    "time without a time zone": (report(occurred_at=datetime(2024, 6, 1, 9)), ["occurred_at"]),
    "amended weapons given as a list": (
        amend({"weapons": [Weapon(WeaponKind.HANDGUN, 0)]}),
        ["correction.weapons[0].count"],
    ),
    "negative counts": (
        report(killed=-1, injured=-1, assailant_count=-1),
        ["assailant_count", "killed", "injured"],
    ),
    "source without a name": (
        report(sources=(Source(SourceKind.PRESS, "  ", "", None),)),
        ["sources[0].name"],
    ),
    "address too long": (report(address="x" * 501), ["address"]),
    # ReviseCasualties / AmendIncident / attributions / links
    "revise without reason": (
        lambda a: a.registry.incidents.revise_casualties(ReviseCasualties(ID, 1, 0, " "), a.ctx()),
        ["reason"],
    ),
    "revise negative killed": (
        lambda a: a.registry.incidents.revise_casualties(ReviseCasualties(ID, -1, 0, "r"), a.ctx()),
        ["killed"],
    ),
    "revise in the future": (
        lambda a: a.registry.incidents.revise_casualties(
            ReviseCasualties(ID, 1, 0, "r", occurred_at=FUTURE), a.ctx()
        ),
        ["occurred_at"],
    ),
    "amend nothing": (amend({}), ["update_mask"]),
    "amend without reason": (amend({"address": "x"}, reason=""), ["reason"]),
    "amend to unknown municipality": (
        amend({"municipality_code": "99999"}),
        ["correction.municipality_code"],
    ),
    "amend location outside": (amend({"location": PARIS}), ["correction.location"]),
    "amend weapon count": (
        amend({"weapons": (Weapon(WeaponKind.OTHER, 0),)}),
        ["correction.weapons[0].count"],
    ),
    "amend occurrence into the future": (
        amend({"occurred_at": FUTURE}),
        ["correction.occurred_at"],
    ),
    "amend occurrence to nothing": (amend({"occurred_at": None}), ["correction.occurred_at"]),
    "confidence above one": (attribute(confidence=1.01), ["confidence"]),
    "confidence below zero": (attribute(confidence=-0.1), ["confidence"]),
    "confidence not a number": (attribute(confidence=math.nan), ["confidence"]),
    "blank basis": (attribute(basis="   "), ["basis"]),
    "retract without reason": (
        lambda a: a.registry.incidents.retract_attribution(
            RetractAttribution(ID, OTHER, ""), a.ctx()
        ),
        ["reason"],
    ),
    "link to itself": (
        lambda a: a.registry.incidents.link(LinkIncidents(ID, ID, LinkKind.SAME_SERIES), a.ctx()),
        ["related_incident_id"],
    ),
    # Gangs
    "gang without a name": (register(name=" "), ["name"]),
    "blank alias": (register(aliases=("",)), ["aliases[0]"]),
    "unknown territory": (
        register(territory_municipality_codes=("21001", "nowhere")),
        ["territory_municipality_codes[1]"],
    ),
    "territory twice": (
        register(territory_municipality_codes=("21001", "21001")),
        ["territory_municipality_codes[1]"],
    ),
    "add blank alias": (
        lambda a: a.registry.gangs.add_alias(AddGangAlias(ID, "\t"), a.ctx()),
        ["alias"],
    ),
    # Unified commands
    "unify nothing": (unify(), ["municipality_codes"]),
    "unknown police zone": (unify(police_zone_codes=("5339", "9999")), ["police_zone_codes[1]"]),
    "unify unknown municipality": (unify("21001", "nope"), ["municipality_codes[1]"]),
    "planned end before start": (
        unify("21001", starts_at=NOW, planned_end_at=NOW - timedelta(days=1)),
        ["planned_end_at"],
    ),
    "planned end at start": (unify("21001", planned_end_at=NOW), ["planned_end_at"]),
    "blank lead authority and reason": (
        unify("21001", lead_authority="", reason=" "),
        ["lead_authority", "reason"],
    ),
    "triggering incident twice": (
        unify("21001", triggering_incident_ids=(ID, OTHER, ID)),
        ["triggering_incident_ids[2]"],
    ),
    "unify in the future": (unify("21001", occurred_at=FUTURE), ["occurred_at"]),
    "end without reason": (
        lambda a: a.registry.police_commands.end(EndUnifiedCommand(ID, ""), a.ctx()),
        ["reason"],
    ),
    # Asset cases
    "weight on non-drugs": (seize(items=(item(kg=2.0),)), ["items[0].weight_kg"]),
    "negative weight": (seize(items=(item(AssetKind.DRUGS, kg=-1.0),)), ["items[0].weight_kg"]),
    "no items": (seize(items=()), ["items"]),
    "negative value": (seize(items=(item(), item(value=-1))), ["items[1].estimated_value_cents"]),
    "zero quantity": (seize(items=(item(qty=0),)), ["items[0].quantity"]),
    "blank case reference": (seize(case_reference="  "), ["case_reference"]),
    "seizure in the future": (seize(occurred_at=FUTURE), ["occurred_at"]),
    "seizure in unknown municipality": (seize(municipality_code="X"), ["municipality_code"]),
    "seized incident twice": (seize(incident_ids=(ID, ID)), ["incident_ids[1]"]),
    "confiscate zero": (confiscate(amount=0), ["amount_cents"]),
    "confiscate beyond the maximum": (confiscate(amount=10**15 + 1), ["amount_cents"]),
    "confiscate without court": (confiscate(court="", ref=""), ["court", "decision_reference"]),
    "reinvest zero": (
        lambda a: a.registry.asset_cases.reinvest(ReinvestAssets(ID, 0, SCHOOL), a.ctx()),
        ["amount_cents"],
    ),
    "reinvest to nobody": (
        lambda a: a.registry.asset_cases.reinvest(
            ReinvestAssets(ID, 5, Beneficiary(BeneficiaryKind.LAW_ENFORCEMENT, "")), a.ctx()
        ),
        ["beneficiary.name"],
    ),
    "release negative": (
        lambda a: a.registry.asset_cases.release(ReleaseAssets(ID, -5, "c", "d"), a.ctx()),
        ["amount_cents"],
    ),
}  # fmt: skip


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with registries(tmp_path / "db.sqlite") as open_app:
        app = open_app()
        app.report()  # something in the log, so "nothing written" is not trivially true
        yield app


@pytest.mark.parametrize("case", list(CASES))
def test_an_invalid_request_names_its_fields_and_writes_nothing(app: App, case: str) -> None:
    call, fields = CASES[case]
    head = app.head()
    with pytest.raises(InvalidArgumentError) as info:
        app.run(call(app))
    assert [v.field for v in info.value.violations] == fields
    assert all(v.description for v in info.value.violations)
    assert app.head() == head


def test_every_problem_of_a_request_is_reported_at_once(app: App) -> None:
    call = report(
        municipality_code="nope", location=PARIS, weapons=(Weapon(WeaponKind.HANDGUN, 0),),
        injured=-2, description="x" * 10_001,
    )  # fmt: skip
    with pytest.raises(InvalidArgumentError) as info:
        app.run(call(app))
    assert [v.field for v in info.value.violations] == [
        "municipality_code", "location", "weapons[0].count", "injured", "description",
    ]  # fmt: skip


def test_a_future_business_time_is_reported_with_the_other_problems(app: App) -> None:
    command = ConfiscateAssets(ID, 0, "", "d", occurred_at=FUTURE)
    with pytest.raises(InvalidArgumentError) as info:
        app.run(app.registry.asset_cases.confiscate(command, app.ctx()))
    assert [v.field for v in info.value.violations] == ["occurred_at", "amount_cents", "court"]


def test_a_rejected_request_does_not_use_up_its_request_id(app: App) -> None:
    # The first attempt is invalid; the corrected one may reuse the request id.
    with pytest.raises(InvalidArgumentError):
        app.run(app.registry.incidents.report_shooting(app.shooting(killed=-1), app.ctx("r-7")))
    assert app.registry.backend.find_requests(["r-7"]) == {}
    result = app.run(app.registry.incidents.report_shooting(app.shooting(), app.ctx("r-7")))
    assert not result.replayed


def test_a_time_within_the_clock_skew_is_not_in_the_future(app: App) -> None:
    result = app.run(
        app.registry.incidents.report_shooting(
            app.shooting(
                occurred_at=NOW + timedelta(seconds=30), reported_at=NOW + timedelta(minutes=1)
            ),
            app.ctx(),
        )
    )
    assert result.version == 1


@pytest.mark.parametrize(
    ("aliases", "field"), [(("kings",), "aliases[0]"), (("Crowns", "crowns"), "aliases[1]")]
)
def test_a_duplicate_alias_is_named_by_its_own_index(
    app: App, aliases: tuple[str, ...], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        app.run(register(name="Kings", aliases=aliases)(app))
    assert [v.field for v in info.value.violations] == [field]
