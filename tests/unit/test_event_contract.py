"""What every registry event promises: schema version 1, metadata, business time, transcoding."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from service.domain.asset_case import AssetCase
from service.domain.base import RegistryAggregate, recording_metadata
from service.domain.command import MunicipalityCommandSlot, UnifiedCommand
from service.domain.gang import Gang
from service.domain.incident import Incident
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
    TimePrecision,
    Weapon,
    WeaponKind,
)
from service.store.transcoding import registry_mapper, registry_transcoder

T0 = datetime(2024, 4, 2, 21, 30, 15, 123456, tzinfo=UTC)
BRUSSELS_TIME = timezone(timedelta(hours=2))
METADATA = {"actor": "alice", "request_id": "r-1", "correlation_id": "c", "causation_id": "r-1"}

EVENT_NAMES = {
    Incident: {
        "ShootingReported", "CasualtiesRevised", "IncidentAmended",
        "AttributedToGang", "AttributionRetracted", "IncidentLinked", "PersonalDataErased",
    },
    Gang: {"GangRegistered", "GangAliasAdded"},
    UnifiedCommand: {"PoliceCommandUnified", "UnifiedCommandEnded"},
    MunicipalityCommandSlot: {
        "MunicipalityCommandSlotCreated", "MunicipalityCommandAssigned",
        "MunicipalityCommandReleased",
    },
    AssetCase: {
        "AssetCaseOpened", "AssetsSeized", "AssetsConfiscated", "AssetsReinvested",
        "AssetsReleased",
    },
}  # fmt: skip


def event_classes(aggregate: type[RegistryAggregate]) -> dict[str, type]:
    """The concrete event classes declared by an aggregate's @event decorators."""
    base = aggregate.Event
    return {
        name: value
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, base) and value is not base
        and name != "Created"
    }  # fmt: skip


def full_histories() -> list[tuple[RegistryAggregate, list[Any]]]:
    """One aggregate of each type taken through every one of its events."""
    gang_id, other_incident = uuid4(), uuid4()
    incident = Incident(
        occurred_at=T0, occurred_at_precision=TimePrecision.EXACT, reported_at=T0,
        municipality_code="21001", police_zone_code="5341", address="", location=None,
        weapons=(Weapon(WeaponKind.HANDGUN, 1), Weapon(WeaponKind.SHOTGUN, 2)),
        assailant_count=1, assailants_masked=False, killed=0, injured=2, drug_nexus=False,
        description="", external_reference="",
        sources=(
            Source(SourceKind.POLICE_REPORT, "Zone Midi", "PV 1", T0),
            Source(SourceKind.WITNESS, "anonymous", "", None),
        ),
    )  # fmt: skip
    incident.revise_casualties(occurred_at=T0, killed=1, injured=1, reason="died")
    incident.amend(
        occurred_at=T0,
        corrections={
            "occurred_at": T0.astimezone(BRUSSELS_TIME) - timedelta(minutes=5),
            "occurred_at_precision": TimePrecision.MINUTE,
            "location": GeoPoint(50.8366, 4.3313),
            "weapons": (Weapon(WeaponKind.ASSAULT_RIFLE, 1),),
        },
        police_zone_code="",
        reason="ballistics",
    )
    incident.attribute_to_gang(
        occurred_at=T0, gang_id=gang_id, confidence=0.75,
        status=AttributionStatus.SUSPECTED, basis="tags",
    )  # fmt: skip
    incident.retract_attribution(occurred_at=T0, gang_id=gang_id, reason="alibi")
    incident.link(
        occurred_at=T0, related_incident_id=other_incident, kind=LinkKind.RETALIATED_BY, note=""
    )
    incident.erase_personal_data(occurred_at=T0, reason="data subject request")
    gang = Gang(
        occurred_at=T0, name="Kings", aliases=("K",), territory_municipality_codes=("21001",),
        territory_description="",
    )  # fmt: skip
    gang.add_alias(occurred_at=T0, alias="Crowns")
    command = UnifiedCommand(
        occurred_at=T0, municipality_codes=("21001", "21007"), police_zone_codes=(),
        lead_authority="Midi", reason="r", starts_at=T0, planned_end_at=None,
        triggering_incident_ids=(incident.id, other_incident),
    )  # fmt: skip
    command.end(occurred_at=T0, reason="over")
    slot = MunicipalityCommandSlot(occurred_at=T0, municipality_code="21001")
    slot.assign(occurred_at=T0, command_id=command.id)
    slot.release(occurred_at=T0, command_id=command.id)
    case = AssetCase(occurred_at=T0, case_reference="BR.1")
    case.record_seizure(
        occurred_at=T0, municipality_code="21004", gang_id=gang.id, incident_ids=(incident.id,),
        items=(
            AssetItem(AssetKind.CASH, "notes", 900_000, 1, 0.0),
            AssetItem(AssetKind.DRUGS, "resin", 100_000, 4, 2.5),
        ),
        description="raid",
    )  # fmt: skip
    case.confiscate(occurred_at=T0, amount_cents=500_000, court="C", decision_reference="D")
    case.reinvest(
        occurred_at=T0, amount_cents=100_000,
        beneficiary=Beneficiary(BeneficiaryKind.LAW_ENFORCEMENT, "Zone Midi"), note="",
    )  # fmt: skip
    case.release(occurred_at=T0, amount_cents=1, court="C", decision_reference="E", reason="")
    return [(a, list(a.collect_events())) for a in (incident, gang, command, slot, case)]


def as_tuples(value: Any) -> Any:
    """The value with every list turned into a tuple, recursively (JSON has no tuples)."""
    if isinstance(value, list | tuple):
        return tuple(as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: as_tuples(v) for k, v in value.items()}
    return value


def round_trip(event: Any) -> Any:
    mapper = registry_mapper()
    return mapper.to_domain_event(mapper.to_stored_event(event))


@pytest.mark.parametrize("aggregate", list(EVENT_NAMES), ids=lambda a: a.__name__)
def test_every_event_class_is_version_1_with_metadata_and_business_time(
    aggregate: type[RegistryAggregate],
) -> None:
    classes = event_classes(aggregate)
    assert set(classes) == EVENT_NAMES[aggregate]
    for cls in classes.values():
        names = {f.name for f in dataclasses.fields(cls)}
        assert getattr(cls, "class_version", None) == 1, cls
        assert {"metadata", "occurred_at"} <= names, cls


def test_events_carry_the_metadata_being_recorded_and_their_business_time() -> None:
    with recording_metadata(METADATA):
        histories = full_histories()
    events = [e for _, history in histories for e in history]
    # Every event class of every aggregate was exercised.
    assert {type(e).__name__ for e in events} == set().union(*EVENT_NAMES.values())
    assert all(e.metadata == METADATA for e in events)
    assert all(e.occurred_at == T0 for e in events)


def test_events_triggered_outside_a_recording_block_have_empty_metadata() -> None:
    with recording_metadata(METADATA):
        pass
    gang = Gang(
        occurred_at=T0, name="N", aliases=(), territory_municipality_codes=(),
        territory_description="",
    )  # fmt: skip
    gang.add_alias(occurred_at=T0, alias="M")
    events: list[Any] = list(gang.collect_events())
    assert [e.metadata for e in events] == [{}, {}]


def test_recorded_metadata_is_copied_not_shared() -> None:
    given = dict(METADATA)
    with recording_metadata(given):
        given["actor"] = "mallory"
        histories = full_histories()
    assert all(e.metadata["actor"] == "alice" for _, h in histories for e in h)


def test_transcoding_round_trip_preserves_every_event_value() -> None:
    with recording_metadata(METADATA):
        histories = full_histories()
    for _, history in histories:
        for event in history:
            decoded = round_trip(event)
            assert type(decoded) is type(event)
            # Enums, value objects, UUIDs, datetimes (offset included) and None come back
            # equal; JSON returns sequences as lists, so compare those as tuples.
            assert as_tuples(vars(decoded)) == as_tuples(vars(event))


def test_transcoding_keeps_types_of_nested_values() -> None:
    with recording_metadata(METADATA):
        ((incident, history), *_) = full_histories()
    reported, _, amended, attributed, *_ = (round_trip(e) for e in history)
    assert reported.location is None
    assert reported.occurred_at_precision is TimePrecision.EXACT
    assert reported.sources[0].retrieved_at == T0
    assert reported.sources[1].kind is SourceKind.WITNESS
    assert amended.corrections["occurred_at"].utcoffset() == timedelta(hours=2)
    assert amended.corrections["location"] == GeoPoint(50.8366, 4.3313)
    assert attributed.gang_id.version == 4
    assert attributed.originator_id == incident.id


def test_replaying_transcoded_events_rebuilds_equal_aggregates() -> None:
    with recording_metadata(METADATA):
        histories = full_histories()
    for aggregate, history in histories:
        rebuilt = None
        for event in history:
            rebuilt = round_trip(event).mutate(rebuilt)
        # The aggregates re-tuple their sequences, so their state survives JSON exactly.
        assert rebuilt == aggregate


def test_transcoded_events_equal_the_originals() -> None:
    with recording_metadata(METADATA):
        histories = full_histories()
    for _, history in histories:
        for event in history:
            assert round_trip(event) == event


def test_stored_payloads_hold_every_attribute_in_its_stored_form() -> None:
    mapper = registry_mapper()
    transcoder = registry_transcoder()
    for _, events in full_histories():
        for event in events:
            payload = mapper.to_payload(mapper.to_stored_event(event))
            state = dict(vars(event))
            del state["originator_id"], state["originator_version"]
            assert payload == json.loads(transcoder.encode(state))


def test_a_payload_stored_by_another_class_version_must_be_decoded_fully() -> None:
    mapper = registry_mapper()
    _, events = full_histories()[0]
    stored = mapper.to_stored_event(events[0])
    state = json.loads(stored.state)
    state["class_version"] = 2
    older = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )
    assert mapper.to_payload(stored) is not None
    assert mapper.to_payload(older) is None
