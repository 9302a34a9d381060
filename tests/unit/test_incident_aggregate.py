"""The Incident aggregate on its own: events, state, rule violations and replay."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest

from service.domain.base import recording_metadata
from service.domain.errors import InvalidArgumentError, RuleViolatedError
from service.domain.incident import Attribution, Incident, IncidentLink
from service.domain.values import (
    AttributionStatus,
    GeoPoint,
    LinkKind,
    Source,
    SourceKind,
    TimePrecision,
    Weapon,
    WeaponKind,
)

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = datetime(2024, 3, 1, 22, 15, tzinfo=UTC)
LATER = T0 + timedelta(hours=2)


def collected(aggregate: Any) -> list[Any]:
    """Take the aggregate's pending events (typed loosely: event attributes are dynamic)."""
    return list(aggregate.collect_events())


def report(**overrides: Any) -> Incident:
    facts: dict[str, Any] = {
        "occurred_at": T0,
        "occurred_at_precision": TimePrecision.MINUTE,
        "reported_at": LATER,
        "municipality_code": "21001",
        "police_zone_code": "5341",
        "address": "Rue Wayez 1",
        "location": GeoPoint(50.8366, 4.3313),
        "weapons": (Weapon(WeaponKind.HANDGUN, 2),),
        "assailant_count": 2,
        "assailants_masked": True,
        "killed": 0,
        "injured": 1,
        "drug_nexus": True,
        "description": "shots fired at a car",
        "sources": (Source(SourceKind.PRESS, "Le Soir", "https://example.org/a", None),),
        "external_reference": "PV-1",
    }
    facts.update(overrides)
    return Incident(**facts)


def reported() -> Incident:
    """A reported incident whose creation event has already been collected."""
    incident = report()
    collected(incident)
    return incident


def rejected(aggregate: Incident, error: type[Exception], call: Callable[[], None]) -> Any:
    """Run a command that must be refused; the aggregate must be exactly as before."""
    before = copy.deepcopy(aggregate)
    with pytest.raises(error) as info:
        call()
    assert aggregate == before  # same state, same version, same pending events
    assert aggregate.version == before.version
    assert len(aggregate.pending_events) == len(before.pending_events)
    return info.value


def replay(events: list[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def test_reporting_a_shooting_triggers_shooting_reported_with_all_facts() -> None:
    incident = report()
    # One creation event, version 1, every fact kept; nothing attributed or linked yet.
    (event,) = collected(incident)
    assert type(event).__qualname__ == "Incident.ShootingReported"
    assert incident.version == 1
    assert event.weapons == (Weapon(WeaponKind.HANDGUN, 2),)
    assert incident.occurred_at == T0
    assert incident.reported_at == LATER
    assert incident.location == GeoPoint(50.8366, 4.3313)
    assert incident.police_zone_code == "5341"
    assert incident.weapons == (Weapon(WeaponKind.HANDGUN, 2),)
    assert incident.sources[0].name == "Le Soir"
    assert (incident.killed, incident.injured, incident.drug_nexus) == (0, 1, True)
    assert incident.attributions == {}
    assert incident.links == {}


def test_a_shooting_cannot_occur_after_it_was_reported() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        report(occurred_at=LATER + timedelta(seconds=1))
    assert [v.field for v in info.value.violations] == ["occurred_at"]


def test_revising_casualties_sets_new_totals() -> None:
    incident = reported()
    # A victim dies in hospital: the totals are replaced, not added to.
    incident.revise_casualties(occurred_at=LATER, killed=1, injured=0, reason="died")
    (event,) = collected(incident)
    assert type(event).__qualname__ == "Incident.CasualtiesRevised"
    assert (incident.killed, incident.injured, incident.version) == (1, 0, 2)


def test_amending_corrects_the_named_fields_only() -> None:
    incident = reported()
    incident.amend(
        occurred_at=LATER,
        corrections={"address": "Rue Wayez 3", "weapons": [Weapon(WeaponKind.SHOTGUN, 1)]},
        police_zone_code="",
        reason="police report",
    )
    (event,) = collected(incident)
    assert type(event).__qualname__ == "Incident.IncidentAmended"
    assert incident.address == "Rue Wayez 3"
    # Weapons are always kept as a tuple, whatever sequence the correction carried.
    assert incident.weapons == (Weapon(WeaponKind.SHOTGUN, 1),)
    # The municipality did not change, so neither does the police zone.
    assert (incident.municipality_code, incident.police_zone_code) == ("21001", "5341")
    assert incident.version == 2


def test_correcting_the_municipality_moves_the_incident_to_its_police_zone() -> None:
    incident = reported()
    incident.amend(
        occurred_at=LATER,
        corrections={"municipality_code": "21004", "location": None},
        police_zone_code="5339",
        reason="wrong side of the street",
    )
    assert (incident.municipality_code, incident.police_zone_code) == ("21004", "5339")
    assert incident.location is None


@pytest.mark.parametrize("corrections", [{}, {"killed": 3}, {"address": "x", "reported_at": T0}])
def test_amending_nothing_or_an_unamendable_field_is_refused(corrections: dict[str, Any]) -> None:
    incident = reported()
    error = rejected(
        incident,
        InvalidArgumentError,
        lambda: incident.amend(
            occurred_at=LATER, corrections=corrections, police_zone_code="", reason="r"
        ),
    )
    assert [v.field for v in error.violations] == ["update_mask"]


def test_a_corrected_occurrence_time_cannot_be_after_the_report() -> None:
    incident = reported()
    error = rejected(
        incident,
        InvalidArgumentError,
        lambda: incident.amend(
            occurred_at=LATER,
            corrections={"occurred_at": LATER + timedelta(minutes=1), "address": "elsewhere"},
            police_zone_code="",
            reason="r",
        ),
    )
    assert [v.field for v in error.violations] == ["correction.occurred_at"]
    assert incident.address == "Rue Wayez 1"


def test_attributing_twice_to_the_same_gang_revises_the_attribution() -> None:
    incident = reported()
    gang_id = uuid4()
    incident.attribute_to_gang(
        occurred_at=T0,
        gang_id=gang_id,
        confidence=0.4,
        status=AttributionStatus.SUSPECTED,
        basis="graffiti",
    )
    incident.attribute_to_gang(
        occurred_at=LATER,
        gang_id=gang_id,
        confidence=0.9,
        status=AttributionStatus.CONFIRMED,
        basis="prosecutor",
    )
    events = collected(incident)
    assert [type(e).__qualname__ for e in events] == ["Incident.AttributedToGang"] * 2
    # Still one attribution per gang, now the confirmed one.
    assert incident.attributions == {
        gang_id: Attribution(gang_id, 0.9, AttributionStatus.CONFIRMED, "prosecutor", LATER)
    }
    assert incident.version == 3


def test_retracting_an_attribution_removes_it() -> None:
    incident = reported()
    gang_id = uuid4()
    incident.attribute_to_gang(
        occurred_at=T0,
        gang_id=gang_id,
        confidence=0.5,
        status=AttributionStatus.SUSPECTED,
        basis="b",
    )
    incident.retract_attribution(occurred_at=LATER, gang_id=gang_id, reason="alibi")
    assert type(collected(incident)[-1]).__qualname__ == "Incident.AttributionRetracted"
    assert incident.attributions == {}


def test_retracting_an_attribution_that_does_not_exist_is_a_rule_violation() -> None:
    incident = reported()
    error = rejected(
        incident,
        RuleViolatedError,
        lambda: incident.retract_attribution(occurred_at=LATER, gang_id=uuid4(), reason="r"),
    )
    assert error.rule == "attribution_exists"
    assert error.subject == f"incident/{incident.id}"


def test_linking_records_the_relation_seen_from_this_incident() -> None:
    incident = reported()
    other = uuid4()
    incident.link(
        occurred_at=LATER, related_incident_id=other, kind=LinkKind.RETALIATION_FOR, note="revenge"
    )
    (event,) = collected(incident)
    assert type(event).__qualname__ == "Incident.IncidentLinked"
    assert incident.links == {other: IncidentLink(other, LinkKind.RETALIATION_FOR, "revenge")}


def test_an_incident_cannot_be_linked_to_itself_or_twice_to_the_same_one() -> None:
    incident = reported()
    error = rejected(
        incident,
        InvalidArgumentError,
        lambda: incident.link(
            occurred_at=LATER, related_incident_id=incident.id, kind=LinkKind.SAME_SERIES, note=""
        ),
    )
    assert [v.field for v in error.violations] == ["related_incident_id"]
    other = uuid4()
    incident.link(occurred_at=LATER, related_incident_id=other, kind=LinkKind.SAME_SERIES, note="")
    error = rejected(
        incident,
        RuleViolatedError,
        lambda: incident.link(
            occurred_at=LATER, related_incident_id=other, kind=LinkKind.RETALIATED_BY, note=""
        ),
    )
    assert error.rule == "link_is_new"


def test_link_kinds_invert_when_seen_from_the_other_incident() -> None:
    assert LinkKind.RETALIATION_FOR.inverse() is LinkKind.RETALIATED_BY
    assert LinkKind.RETALIATED_BY.inverse() is LinkKind.RETALIATION_FOR
    assert LinkKind.SAME_SERIES.inverse() is LinkKind.SAME_SERIES


def test_replaying_the_collected_events_rebuilds_an_equal_incident() -> None:
    with recording_metadata({"actor": "analyst", "request_id": "r-1"}):
        incident = report()
        gang_id = uuid4()
        incident.revise_casualties(occurred_at=LATER, killed=1, injured=0, reason="died")
        incident.amend(
            occurred_at=LATER, corrections={"drug_nexus": False}, police_zone_code="", reason="r"
        )
        incident.attribute_to_gang(
            occurred_at=LATER,
            gang_id=gang_id,
            confidence=1.0,
            status=AttributionStatus.CONFIRMED,
            basis="court",
        )
        incident.link(
            occurred_at=LATER, related_incident_id=uuid4(), kind=LinkKind.SAME_SERIES, note=""
        )
    events = collected(incident)
    assert len(events) == 5
    # Every event carries the metadata of the block it was triggered in.
    assert {e.metadata["request_id"] for e in events} == {"r-1"}
    # Replaying from nothing gives the same state and version.
    rebuilt = replay(events)
    assert rebuilt == incident
    assert rebuilt.version == 5
