"""UnifiedCommand and MunicipalityCommandSlot on their own: events, state, rules, replay."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from service.domain.base import recording_metadata
from service.domain.command import MunicipalityCommandSlot, UnifiedCommand, slot_id
from service.domain.errors import RuleViolatedError

T0 = datetime(2024, 5, 1, 8, tzinfo=UTC)


def collected(aggregate: Any) -> list[Any]:
    """Take the aggregate's pending events (typed loosely: event attributes are dynamic)."""
    return list(aggregate.collect_events())


def unify(**overrides: Any) -> UnifiedCommand:
    facts: dict[str, Any] = {
        "occurred_at": T0,
        "municipality_codes": ["21001", "21007"],
        "police_zone_codes": ["5341"],
        "lead_authority": "Zone Midi",
        "reason": "wave of shootings",
        "starts_at": T0,
        "planned_end_at": T0 + timedelta(days=14),
        "triggering_incident_ids": [uuid4()],
    }
    facts.update(overrides)
    return UnifiedCommand(**facts)


def free_slot(code: str = "21001") -> MunicipalityCommandSlot:
    slot = MunicipalityCommandSlot(occurred_at=T0, municipality_code=code)
    collected(slot)
    return slot


def refused(aggregate: Any, call: Any) -> RuleViolatedError:
    """The call must break a rule and leave the aggregate exactly as it was."""
    before = copy.deepcopy(aggregate)
    with pytest.raises(RuleViolatedError) as info:
        call()
    assert aggregate == before
    assert aggregate.version == before.version
    assert aggregate.pending_events == before.pending_events
    return info.value


def replay(events: Any) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def test_unifying_triggers_police_command_unified_and_the_command_is_active() -> None:
    command = unify(planned_end_at=None)
    (event,) = collected(command)
    assert type(event).__qualname__ == "UnifiedCommand.PoliceCommandUnified"
    assert command.version == 1
    assert command.municipality_codes == ("21001", "21007")
    assert command.police_zone_codes == ("5341",)
    assert isinstance(command.triggering_incident_ids, tuple)
    assert command.planned_end_at is None
    assert command.is_active
    assert (command.ended_at, command.end_reason) == (None, "")


def test_ending_a_command_records_when_and_why() -> None:
    command = unify()
    collected(command)
    command.end(occurred_at=T0 + timedelta(days=3), reason="calm restored")
    (event,) = collected(command)
    assert type(event).__qualname__ == "UnifiedCommand.UnifiedCommandEnded"
    assert not command.is_active
    assert command.ended_at == T0 + timedelta(days=3)
    assert command.end_reason == "calm restored"
    assert command.version == 2


def test_ending_a_command_twice_is_a_rule_violation() -> None:
    command = unify()
    command.end(occurred_at=T0, reason="done")
    error = refused(command, lambda: command.end(occurred_at=T0, reason="again"))
    assert error.rule == "command_is_active"
    assert error.subject == f"unified_command/{command.id}"


def test_a_slot_is_identified_by_its_municipality() -> None:
    slot = MunicipalityCommandSlot(occurred_at=T0, municipality_code="21001")
    (event,) = collected(slot)
    assert type(event).__qualname__ == "MunicipalityCommandSlot.MunicipalityCommandSlotCreated"
    # The same code always names the same slot; other codes name other slots.
    assert slot.id == slot_id("21001") == MunicipalityCommandSlot.create_id("21001")
    assert slot_id("21001") != slot_id("21002")
    assert slot.command_id is None


def test_assigning_a_free_slot_places_the_municipality_under_the_command() -> None:
    slot = free_slot()
    command_id = uuid4()
    slot.assign(occurred_at=T0, command_id=command_id)
    (event,) = collected(slot)
    assert type(event).__qualname__ == "MunicipalityCommandSlot.MunicipalityCommandAssigned"
    assert slot.command_id == command_id
    assert slot.version == 2


def test_a_held_slot_cannot_be_assigned_to_another_command() -> None:
    slot = free_slot()
    slot.assign(occurred_at=T0, command_id=uuid4())
    error = refused(slot, lambda: slot.assign(occurred_at=T0, command_id=uuid4()))
    assert error.rule == "one_active_command_per_municipality"
    assert error.subject == "municipality/21001"


def test_releasing_frees_the_slot_for_a_new_command() -> None:
    slot = free_slot()
    first, second = uuid4(), uuid4()
    slot.assign(occurred_at=T0, command_id=first)
    slot.release(occurred_at=T0, command_id=first)
    assert slot.command_id is None
    slot.assign(occurred_at=T0, command_id=second)
    events = collected(slot)
    assert [type(e).__name__ for e in events] == [
        "MunicipalityCommandAssigned",
        "MunicipalityCommandReleased",
        "MunicipalityCommandAssigned",
    ]
    assert slot.command_id == second
    assert slot.version == 4


@pytest.mark.parametrize("held", [False, True])
def test_only_the_holding_command_can_release_a_slot(held: bool) -> None:
    slot = free_slot()
    if held:
        slot.assign(occurred_at=T0, command_id=uuid4())
    error = refused(slot, lambda: slot.release(occurred_at=T0, command_id=uuid4()))
    assert error.rule == "slot_held_by_command"


def test_replaying_the_collected_events_rebuilds_equal_commands_and_slots() -> None:
    with recording_metadata({"request_id": "r-9"}):
        command = unify()
        slot = MunicipalityCommandSlot(occurred_at=T0, municipality_code="21007")
        slot.assign(occurred_at=T0, command_id=command.id)
        command.end(occurred_at=T0, reason="over")
        slot.release(occurred_at=T0, command_id=command.id)
    command_events, slot_events = collected(command), collected(slot)
    assert all(e.metadata == {"request_id": "r-9"} for e in [*command_events, *slot_events])
    assert replay(command_events) == command
    assert replay(slot_events) == slot
    assert replay(slot_events).version == 3
