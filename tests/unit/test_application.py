"""The application services end to end on SQLite: happy paths, missing aggregates, versions."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

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
from service.domain.asset_case import case_id
from service.domain.errors import NotFoundError, VersionConflictError
from service.domain.values import (
    AssetItem,
    AssetKind,
    AttributionStatus,
    Beneficiary,
    BeneficiaryKind,
    GeoPoint,
    LinkKind,
)
from tests.unit.app_driver import App, registries

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SCHOOL = Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth club")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with registries(tmp_path / "db.sqlite") as open_app:
        yield open_app()


def test_reporting_a_shooting_records_an_incident_in_its_police_zone(app: App) -> None:
    result = app.run(
        app.registry.incidents.report_shooting(
            app.shooting(killed=1, location=GeoPoint(50.8366, 4.3313)), app.ctx("r-1")
        )
    )
    assert (result.version, result.position, result.replayed) == (1, 1, False)
    incident, history = app.run(app.registry.incidents.get(result.aggregate_id))
    # The police zone comes from the area catalog; reported_at defaults to the clock.
    assert incident.police_zone_code == "5341"
    assert incident.reported_at == app.now
    assert incident.killed == 1
    (recorded,) = history
    assert recorded.position == 1
    assert getattr(recorded.event, "metadata", None) == {
        "actor": "analyst@example.org",
        "correlation_id": "r-1",
        "causation_id": "r-1",
        "request_id": "r-1",
    }


def test_revising_casualties_defaults_business_time_to_now(app: App) -> None:
    incident_id = app.report()
    command = ReviseCasualties(incident_id=incident_id, killed=2, injured=0, reason="died")
    result = app.run(app.registry.incidents.revise_casualties(command, app.ctx()))
    assert (result.aggregate_id, result.version, result.position) == (incident_id, 2, 2)
    incident, history = app.run(app.registry.incidents.get(incident_id))
    assert (incident.killed, incident.injured) == (2, 0)
    assert getattr(history[-1].event, "occurred_at", None) == app.now


def test_amending_the_municipality_takes_the_new_police_zone_from_the_catalog(app: App) -> None:
    incident_id = app.report()
    earlier = app.now - timedelta(hours=5)
    command = AmendIncident(
        incident_id=incident_id,
        corrections={"municipality_code": "21004", "occurred_at": earlier},
        reason="wrong address",
    )
    app.run(app.registry.incidents.amend(command, app.ctx()))
    incident, _ = app.run(app.registry.incidents.get(incident_id))
    assert (incident.municipality_code, incident.police_zone_code) == ("21004", "5339")
    assert incident.occurred_at == earlier


def test_attributing_to_a_gang_and_retracting_it(app: App) -> None:
    incident_id, gang_id = app.report(), app.gang()
    app.run(
        app.registry.incidents.attribute_to_gang(
            AttributeToGang(incident_id, gang_id, 0.8, AttributionStatus.SUSPECTED, "tags"),
            app.ctx(),
        )
    )
    incident, _ = app.run(app.registry.incidents.get(incident_id))
    assert incident.attributions[gang_id].confidence == 0.8
    result = app.run(
        app.registry.incidents.retract_attribution(
            RetractAttribution(incident_id, gang_id, "alibi"), app.ctx()
        )
    )
    assert result.version == 3
    incident, _ = app.run(app.registry.incidents.get(incident_id))
    assert incident.attributions == {}


def test_registering_a_gang_trims_its_names_and_aliases_can_be_added(app: App) -> None:
    command = RegisterGang(
        name="  Kings ", aliases=(" K-Boys",), territory_municipality_codes=("21001", "21007")
    )
    gang_id = app.run(app.registry.gangs.register(command, app.ctx())).aggregate_id
    app.run(app.registry.gangs.add_alias(AddGangAlias(gang_id, " Crowns "), app.ctx()))
    gang, history = app.run(app.registry.gangs.get(gang_id))
    assert (gang.name, gang.aliases) == ("Kings", ("K-Boys", "Crowns"))
    assert gang.territory_municipality_codes == ("21001", "21007")
    assert len(history) == 2


def test_unifying_and_ending_a_police_command(app: App) -> None:
    result = app.unify("21002", police_zone_codes=("5339",))
    command, _ = app.run(app.registry.police_commands.get(result.aggregate_id))
    # The zone expands into its municipalities, merged and sorted with those named.
    assert command.municipality_codes == ("21002", "21004", "21009")
    assert command.police_zone_codes == ("5339",)
    assert command.starts_at == app.now
    ended = app.run(
        app.registry.police_commands.end(EndUnifiedCommand(result.aggregate_id, "calm"), app.ctx())
    )
    assert ended.version == 2
    command, _ = app.run(app.registry.police_commands.get(result.aggregate_id))
    assert not command.is_active


def test_asset_case_commands_follow_the_money(app: App) -> None:
    seized = app.seize(
        items=(
            AssetItem(AssetKind.CASH, "notes", 7_000, 1, 0.0),
            AssetItem(AssetKind.DRUGS, "resin", 3_000, 2, 1.25),
        )
    )
    # The first seizure opens the case: two events, version 2.
    assert (seized.aggregate_id, seized.version) == (case_id("BR.12.34/24"), 2)
    case = seized.aggregate_id
    registry = app.registry.asset_cases
    app.run(registry.confiscate(ConfiscateAssets(case, 8_000, "Brussels", "D1"), app.ctx()))
    app.run(registry.reinvest(ReinvestAssets(case, 5_000, SCHOOL, "gym"), app.ctx()))
    result = app.run(registry.release(ReleaseAssets(case, 1_000, "Brussels", "D2"), app.ctx()))
    assert result.version == 5
    state, history = app.run(registry.get(case))
    assert (state.seized_cents, state.confiscated_cents) == (10_000, 8_000)
    assert (state.reinvested_cents, state.released_cents, state.available_cents) == (
        5_000, 1_000, 2_000,
    )  # fmt: skip
    assert [r.position for r in history] == [1, 2, 3, 4, 5]


Call = Callable[[App, dict[str, UUID]], Coroutine[Any, Any, Any]]
MISSING = uuid4()

NOT_FOUND: dict[str, tuple[Call, str]] = {
    "revise unknown incident": (
        lambda a, ids: a.registry.incidents.revise_casualties(
            ReviseCasualties(MISSING, 0, 0, "r"), a.ctx()
        ),
        "incident",
    ),
    "amend gang id as incident": (
        lambda a, ids: a.registry.incidents.amend(
            AmendIncident(ids["gang"], {"address": "x"}, "r"), a.ctx()
        ),
        "incident",
    ),
    "attribute to unknown gang": (
        lambda a, ids: a.registry.incidents.attribute_to_gang(
            AttributeToGang(ids["incident"], MISSING, 1.0, AttributionStatus.CONFIRMED, "b"),
            a.ctx(),
        ),
        "gang",
    ),
    "retract on unknown incident": (
        lambda a, ids: a.registry.incidents.retract_attribution(
            RetractAttribution(MISSING, ids["gang"], "r"), a.ctx()
        ),
        "incident",
    ),
    "link to unknown incident": (
        lambda a, ids: a.registry.incidents.link(
            LinkIncidents(ids["incident"], MISSING, LinkKind.SAME_SERIES), a.ctx()
        ),
        "incident",
    ),
    "alias on incident id": (
        lambda a, ids: a.registry.gangs.add_alias(AddGangAlias(ids["incident"], "x"), a.ctx()),
        "gang",
    ),
    "end unknown command": (
        lambda a, ids: a.registry.police_commands.end(EndUnifiedCommand(MISSING, "r"), a.ctx()),
        "unified_command",
    ),
    "confiscate unknown case": (
        lambda a, ids: a.registry.asset_cases.confiscate(
            ConfiscateAssets(MISSING, 1, "c", "d"), a.ctx()
        ),
        "asset_case",
    ),
    "reinvest from gang id": (
        lambda a, ids: a.registry.asset_cases.reinvest(
            ReinvestAssets(ids["gang"], 1, SCHOOL), a.ctx()
        ),
        "asset_case",
    ),
    "release unknown case": (
        lambda a, ids: a.registry.asset_cases.release(ReleaseAssets(MISSING, 1, "c", "d"), a.ctx()),
        "asset_case",
    ),
    "seizure by unknown gang": (
        lambda a, ids: a.registry.asset_cases.record_seizure(a.seizure(gang_id=MISSING), a.ctx()),
        "gang",
    ),
    "seizure for gang id as incident": (
        lambda a, ids: a.registry.asset_cases.record_seizure(
            a.seizure(incident_ids=(ids["gang"],)), a.ctx()
        ),
        "incident",
    ),
    "unify after unknown incident": (
        lambda a, ids: a.registry.police_commands.unify(
            a.unification("21001", triggering_incident_ids=(MISSING,)), a.ctx()
        ),
        "incident",
    ),
    "read unknown incident": (lambda a, ids: a.registry.incidents.get(MISSING), "incident"),
    "read gang as incident": (lambda a, ids: a.registry.incidents.get(ids["gang"]), "incident"),
    "read incident as gang": (lambda a, ids: a.registry.gangs.get(ids["incident"]), "gang"),
    "read unknown command": (
        lambda a, ids: a.registry.police_commands.get(MISSING),
        "unified_command",
    ),
    "read unknown case": (lambda a, ids: a.registry.asset_cases.get(MISSING), "asset_case"),
}


@pytest.mark.parametrize("case", list(NOT_FOUND))
def test_a_missing_or_mistyped_aggregate_is_not_found_and_nothing_is_written(
    app: App, case: str
) -> None:
    call, resource_type = NOT_FOUND[case]
    ids = {"incident": app.report(), "gang": app.gang()}
    head = app.head()
    with pytest.raises(NotFoundError) as info:
        app.run(call(app, ids))
    assert info.value.resource_type == resource_type
    assert app.head() == head


def test_a_stale_expected_version_is_a_conflict_naming_both_versions(app: App) -> None:
    incident_id = app.report()
    head = app.head()
    command = ReviseCasualties(incident_id, 1, 0, "died")
    with pytest.raises(VersionConflictError) as info:
        app.run(app.registry.incidents.revise_casualties(command, app.ctx(expected_version=3)))
    assert (info.value.aggregate_id, info.value.expected, info.value.actual) == (
        str(incident_id), 3, 1,
    )  # fmt: skip
    assert app.head() == head
    # With the right expected version the same command goes through.
    result = app.run(app.registry.incidents.revise_casualties(command, app.ctx(expected_version=1)))
    assert result.version == 2


@pytest.mark.parametrize("create", ["report", "register", "unify", "seizure"])
def test_creating_with_a_non_zero_expected_version_is_a_conflict(app: App, create: str) -> None:
    calls = {
        "report": lambda c: app.registry.incidents.report_shooting(app.shooting(), c),
        "register": lambda c: app.registry.gangs.register(RegisterGang(name="Kings"), c),
        "unify": lambda c: app.registry.police_commands.unify(app.unification("21001"), c),
        "seizure": lambda c: app.registry.asset_cases.record_seizure(app.seizure(), c),
    }
    with pytest.raises(VersionConflictError) as info:
        app.run(calls[create](app.ctx(expected_version=5)))
    assert (info.value.expected, info.value.actual) == (5, 0)
    assert app.head() == 0
    # Expected version 0 means "must not exist yet", which holds.
    assert app.run(calls[create](app.ctx(expected_version=0))).version >= 1


def test_a_seizure_into_an_existing_case_checks_the_case_version(app: App) -> None:
    app.seize()
    with pytest.raises(VersionConflictError) as info:
        app.run(app.registry.asset_cases.record_seizure(app.seizure(), app.ctx(expected_version=1)))
    assert (info.value.expected, info.value.actual) == (1, 2)
    result = app.run(
        app.registry.asset_cases.record_seizure(app.seizure(), app.ctx(expected_version=2))
    )
    assert result.version == 3
