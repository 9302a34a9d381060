"""The Gang aggregate on its own: registration, aliases and replay."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from service.domain.base import recording_metadata
from service.domain.errors import RuleViolatedError
from service.domain.gang import Gang

T0 = datetime(2024, 1, 10, tzinfo=UTC)


def collected(aggregate: Any) -> list[Any]:
    """Take the aggregate's pending events (typed loosely: event attributes are dynamic)."""
    return list(aggregate.collect_events())


def register() -> Gang:
    facts: dict[str, Any] = {
        "occurred_at": T0,
        "name": "Kings",
        "aliases": ["K-Boys"],  # a list on purpose: the gang keeps a tuple
        "territory_municipality_codes": ["21001", "21007"],
        "territory_description": "around Clemenceau",
    }
    return Gang(**facts)


def test_registering_a_gang_triggers_gang_registered() -> None:
    gang = register()
    (event,) = collected(gang)
    assert type(event).__qualname__ == "Gang.GangRegistered"
    assert gang.version == 1
    # Sequences are kept as tuples, whatever the caller passed.
    assert gang.aliases == ("K-Boys",)
    assert gang.territory_municipality_codes == ("21001", "21007")
    assert gang.territory_description == "around Clemenceau"


def test_two_registrations_get_different_ids() -> None:
    assert register().id != register().id


def test_adding_an_alias_appends_it() -> None:
    gang = register()
    collected(gang)
    gang.add_alias(occurred_at=T0, alias="Kingz")
    (event,) = collected(gang)
    assert type(event).__qualname__ == "Gang.GangAliasAdded"
    assert gang.aliases == ("K-Boys", "Kingz")
    assert gang.version == 2


def test_a_gang_is_known_by_its_name_and_aliases_ignoring_case() -> None:
    gang = register()
    assert gang.is_known_as("kings")
    assert gang.is_known_as("K-BOYS")
    assert not gang.is_known_as("Queens")


@pytest.mark.parametrize("alias", ["Kings", "KINGS", "k-boys"])
def test_an_alias_the_gang_is_already_known_by_is_refused(alias: str) -> None:
    gang = register()
    collected(gang)
    before = copy.deepcopy(gang)
    with pytest.raises(RuleViolatedError) as info:
        gang.add_alias(occurred_at=T0, alias=alias)
    assert info.value.rule == "alias_is_new"
    assert info.value.subject == f"gang/{gang.id}"
    # Nothing changed: same aliases, same version, no pending event.
    assert gang == before
    assert gang.version == 1
    assert gang.pending_events == []


def test_replaying_the_collected_events_rebuilds_an_equal_gang() -> None:
    with recording_metadata({"actor": "analyst"}):
        gang = register()
        gang.add_alias(occurred_at=T0, alias="Crowns")
    events = collected(gang)
    assert [e.metadata for e in events] == [{"actor": "analyst"}] * 2
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt == gang
    assert rebuilt is not None
    assert rebuilt.aliases == ("K-Boys", "Crowns")
