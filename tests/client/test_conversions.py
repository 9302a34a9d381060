"""Conversions between the client's dataclasses and protobuf messages round-trip exactly."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from incident_registry_client import (
    AssetItem,
    AssetKind,
    EventFilter,
    GeoPoint,
    IncidentCorrection,
    Source,
    SourceKind,
    TimePrecision,
    Weapon,
    WeaponKind,
)
from incident_registry_client._convert import enums, events, incidents, resources
from incident_registry_client._convert.values import time_field, timestamp
from incident_registry_client.proto.incidents.v1 import events_pb2, incident_pb2

PROTO_PACKAGE = "incident_registry_client.proto.incidents.v1"

aware_times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
)
weapons = st.lists(
    st.builds(Weapon, st.sampled_from(WeaponKind), st.integers(1, 100)), max_size=4
).map(tuple)
points = st.builds(
    GeoPoint, st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False)
)
texts = st.text(max_size=20)


def proto_enums():
    package = importlib.import_module(PROTO_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{PROTO_PACKAGE}.{info.name}")
            yield from module.DESCRIPTOR.enum_types_by_name.values()


def test_every_protobuf_enum_has_a_python_enum_with_every_value():
    mapped = {m.proto.DESCRIPTOR.full_name: m for m in enums.ALL}
    for descriptor in proto_enums():
        assert descriptor.full_name in mapped, f"{descriptor.full_name} has no Python enum"
        mapping = mapped[descriptor.full_name]
        for value in descriptor.values:
            if value.number == 0:
                assert mapping.optional_from_proto(0) is None
                continue
            member = mapping.from_proto(value.number)
            assert mapping.to_proto(member) == value.number
            assert value.name.endswith(member.name)


def test_an_unknown_enum_number_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="WeaponKind value 99"):
        enums.WEAPON_KIND.from_proto(99)


@given(aware_times)
def test_times_round_trip_as_aware_utc_datetimes(value):
    message = incident_pb2.Source(retrieved_at=timestamp(value))
    back = time_field(message, "retrieved_at")
    assert back == value
    assert back.tzinfo is UTC


def test_unset_times_are_none():
    assert time_field(incident_pb2.Source(), "retrieved_at") is None


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        timestamp(datetime(2024, 6, 1, 12, 0))


@given(weapons)
def test_weapons_round_trip(values):
    assert incidents.weapons(incidents.weapon_messages(values)) == values


@given(
    st.lists(
        st.builds(
            Source,
            st.sampled_from(SourceKind),
            texts,
            texts,
            st.none() | aware_times.map(lambda t: t.astimezone(UTC)),
        ),
        max_size=3,
    ).map(tuple)
)
def test_sources_round_trip(values):
    assert incidents.sources(incidents.source_messages(values)) == values


@given(
    st.lists(
        st.builds(
            AssetItem,
            st.sampled_from(AssetKind),
            st.integers(0, 10**12),
            texts,
            st.integers(1, 1000),
            st.floats(0, 1000, allow_nan=False),
        ),
        max_size=3,
    ).map(tuple)
)
def test_asset_items_round_trip_in_cents(values):
    assert resources.asset_items(resources.asset_item_messages(values)) == values


@st.composite
def corrections(draw):
    location = draw(st.none() | points)
    return IncidentCorrection(
        occurred_at=draw(st.none() | aware_times.map(lambda t: t.astimezone(UTC))),
        occurred_at_precision=draw(st.none() | st.sampled_from(TimePrecision)),
        municipality_code=draw(st.none() | texts),
        address=draw(st.none() | texts),
        location=location,
        clear_location=location is None and draw(st.booleans()),
        weapons=draw(st.none() | weapons),
        assailant_count=draw(st.none() | st.integers(0, 20)),
        assailants_masked=draw(st.none() | st.booleans()),
        drug_nexus=draw(st.none() | st.booleans()),
        description=draw(st.none() | texts),
    )


@given(corrections())
def test_corrections_round_trip_through_their_update_mask(correction):
    message, mask = incidents.correction_message(correction)
    assert list(mask.paths) == list(correction.corrected_fields)
    assert incidents.correction(message, mask) == correction


def test_a_correction_cannot_set_and_clear_the_location():
    with pytest.raises(ValueError, match="location"):
        IncidentCorrection(location=GeoPoint(50.8, 4.3), clear_location=True)


def test_every_typed_payload_has_a_conversion():
    oneof = events_pb2.EventEnvelope.DESCRIPTOR.oneofs_by_name["payload"]
    assert set(events.PAYLOADS) == {field.name for field in oneof.fields}


def test_an_event_filter_is_a_tuple_of_strings():
    value = EventFilter(tags=["municipality:21001"], stream_types=("incident",))
    assert value.tags == ("municipality:21001",)
    assert hash(value)
    with pytest.raises(TypeError, match="sequence of strings"):
        EventFilter(tags="municipality:21001")
