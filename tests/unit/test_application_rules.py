"""Domain rules enforced through the application: assets, unified commands, links, cases."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from service.app.commands import (
    AddGangAlias,
    AmendIncident,
    ConfiscateAssets,
    EndUnifiedCommand,
    LinkIncidents,
    ReinvestAssets,
    ReleaseAssets,
    RetractAttribution,
)
from service.domain.command import MunicipalityCommandSlot, slot_id
from service.domain.errors import InvalidArgumentError, RuleViolatedError
from service.domain.values import AssetItem, AssetKind, Beneficiary, BeneficiaryKind, LinkKind
from tests.unit.app_driver import App, registries

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator
    from pathlib import Path
    from uuid import UUID

SCHOOL = Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth club")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with registries(tmp_path / "db.sqlite") as open_app:
        yield open_app()


def refused(app: App, call: Coroutine[Any, Any, Any], rule: str) -> RuleViolatedError:
    """The call breaks `rule`, and nothing is written."""
    head = app.head()
    with pytest.raises(RuleViolatedError) as info:
        app.run(call)
    assert info.value.rule == rule
    assert app.head() == head
    return info.value


def end(app: App, command_id: UUID) -> Coroutine[Any, Any, Any]:
    return app.registry.police_commands.end(EndUnifiedCommand(command_id, "calm"), app.ctx())


# --- asset cases -----------------------------------------------------------------------------


def test_confiscations_cannot_exceed_the_value_seized(app: App) -> None:
    case = app.seize().aggregate_id  # 10,000 seized
    confiscate = app.registry.asset_cases.confiscate
    app.run(confiscate(ConfiscateAssets(case, 9_000, "C", "D1"), app.ctx()))
    refused(app, confiscate(ConfiscateAssets(case, 1_001, "C", "D2"), app.ctx()),
            "confiscated_within_seized")  # fmt: skip
    # Exactly up to the value seized is fine.
    app.run(confiscate(ConfiscateAssets(case, 1_000, "C", "D3"), app.ctx()))


def test_reinvested_plus_released_cannot_exceed_the_value_confiscated(app: App) -> None:
    case = app.seize().aggregate_id
    cases = app.registry.asset_cases
    app.run(cases.confiscate(ConfiscateAssets(case, 6_000, "C", "D"), app.ctx()))
    app.run(cases.reinvest(ReinvestAssets(case, 4_000, SCHOOL), app.ctx()))
    rule = "reinvested_and_released_within_confiscated"
    refused(app, cases.release(ReleaseAssets(case, 2_001, "C", "R"), app.ctx()), rule)
    app.run(cases.release(ReleaseAssets(case, 2_000, "C", "R"), app.ctx()))
    refused(app, cases.reinvest(ReinvestAssets(case, 1, SCHOOL), app.ctx()), rule)
    state, _ = app.run(cases.get(case))
    assert state.available_cents == 0


def test_a_second_seizure_with_the_same_case_reference_adds_to_the_same_case(app: App) -> None:
    first = app.seize()
    drugs = AssetItem(AssetKind.DRUGS, "cannabis", 2_500, 1, 3.0)
    second = app.seize(case_reference="  BR.12.34/24 ", items=(drugs,))
    assert second.aggregate_id == first.aggregate_id
    assert (first.version, second.version) == (2, 3)
    case, history = app.run(app.registry.asset_cases.get(first.aggregate_id))
    assert case.case_reference == "BR.12.34/24"
    assert len(case.seizures) == 2
    assert case.seized_cents == 12_500
    assert [type(r.event).__name__ for r in history] == [
        "AssetCaseOpened", "AssetsSeized", "AssetsSeized",
    ]  # fmt: skip
    # Another reference is another case.
    assert app.seize(case_reference="BR.99").aggregate_id != first.aggregate_id


# --- unified police commands -----------------------------------------------------------------


def test_a_municipality_is_never_under_two_active_commands(app: App) -> None:
    app.unify("21001")
    # Zone 5341 covers 21001, 21007 and 21013: 21001 is taken, so the whole request fails.
    error = refused(
        app,
        app.registry.police_commands.unify(app.unification(police_zone_codes=("5341",)), app.ctx()),
        "one_active_command_per_municipality",
    )
    assert error.subject == "municipalities/21001"
    # The refused request placed nothing under command: 21007 is still free.
    assert app.unify("21007").version == 1


def test_a_zone_command_holds_each_of_its_municipalities(app: App) -> None:
    app.unify(police_zone_codes=("5341",))
    for code in ("21001", "21007", "21013"):
        refused(
            app,
            app.registry.police_commands.unify(app.unification(code), app.ctx()),
            "one_active_command_per_municipality",
        )
    # Municipalities of other zones are unaffected.
    assert app.unify("21002").version == 1


def test_ending_a_command_frees_its_municipalities_for_a_new_one(app: App) -> None:
    first = app.unify("21001", "21007").aggregate_id
    app.run(end(app, first))
    second = app.unify(police_zone_codes=("5341",)).aggregate_id
    slot = app.registry.loader.load(slot_id("21001"))
    assert isinstance(slot, MunicipalityCommandSlot)
    assert slot.command_id == second
    # Created, assigned, released, assigned again.
    assert slot.version == 4


def test_ending_a_command_twice_is_refused(app: App) -> None:
    command_id = app.unify("21001").aggregate_id
    app.run(end(app, command_id))
    error = refused(app, end(app, command_id), "command_is_active")
    assert error.subject == f"unified_command/{command_id}"


def test_a_command_is_logged_before_the_slot_assignments_that_name_it(app: App) -> None:
    first = app.unify("21001").aggregate_id
    app.run(end(app, first))
    # 21001's slot exists now; 21002's is new. Both assignments must follow the command.
    second = app.unify("21001", "21002").aggregate_id
    (created, *_) = app.registry.loader.load_with_history(second)[1]
    for code in ("21001", "21002"):
        *_, assigned = app.registry.loader.load_with_history(slot_id(code))[1]
        assert getattr(assigned.event, "command_id", None) == second
        assert created.position < assigned.position, code


# --- incidents and gangs ---------------------------------------------------------------------


def test_linking_incidents_records_the_link_on_both_with_inverse_kinds(app: App) -> None:
    first, second = app.report(), app.report()
    link = LinkIncidents(second, first, LinkKind.RETALIATION_FOR, note="revenge")
    result = app.run(app.registry.incidents.link(link, app.ctx()))
    assert (result.aggregate_id, result.version) == (second, 2)
    retaliation, _ = app.run(app.registry.incidents.get(second))
    original, history = app.run(app.registry.incidents.get(first))
    assert retaliation.links[first].kind is LinkKind.RETALIATION_FOR
    assert original.links[second].kind is LinkKind.RETALIATED_BY
    assert original.links[second].note == "revenge"
    assert type(history[-1].event).__name__ == "IncidentLinked"
    # Linking again, from either side, is refused.
    for incident_id, related_id in ((second, first), (first, second)):
        again = LinkIncidents(incident_id, related_id, LinkKind.SAME_SERIES)
        refused(app, app.registry.incidents.link(again, app.ctx()), "link_is_new")


def test_retracting_a_missing_attribution_is_refused(app: App) -> None:
    incident_id, gang_id = app.report(), app.gang()
    retract = RetractAttribution(incident_id, gang_id, "never attributed")
    refused(app, app.registry.incidents.retract_attribution(retract, app.ctx()),
            "attribution_exists")  # fmt: skip


def test_an_alias_a_gang_already_has_is_refused(app: App) -> None:
    gang_id = app.gang("Kings")
    refused(app, app.registry.gangs.add_alias(AddGangAlias(gang_id, " kings "), app.ctx()),
            "alias_is_new")  # fmt: skip


def test_an_occurrence_cannot_be_amended_to_after_the_report(app: App) -> None:
    incident_id = app.report(reported_at=app.now - timedelta(hours=2))
    head = app.head()
    amend = AmendIncident(incident_id, {"occurred_at": app.now - timedelta(hours=1)}, "r")
    with pytest.raises(InvalidArgumentError) as info:
        app.run(app.registry.incidents.amend(amend, app.ctx()))
    assert [v.field for v in info.value.violations] == ["correction.occurred_at"]
    assert app.head() == head
