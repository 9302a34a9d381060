"""The audit projection's rows: metadata read from the stored payload, or from the event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from projections.audit import EVENT_TYPES, audit_row, micros, moment
from projections.base import Recorded
from service.domain.base import recording_metadata
from service.domain.events import EVENT_TYPES as ALL_EVENT_TYPES
from service.domain.gang import Gang
from service.store.cipher import KEY_BYTES, EncryptionKey, Keyring
from service.store.transcoding import registry_mapper

METADATA = {
    "actor": "bob@police.brussels",
    "request_id": "gang-1",
    "correlation_id": "case-7",
    "causation_id": "gang-1",
}


def registered_gang() -> Any:
    with recording_metadata(METADATA):
        gang = Gang(
            occurred_at=datetime(2025, 2, 5, 6, 10, tzinfo=UTC),
            name="Clan X",
            aliases=("X",),
            territory_municipality_codes=("21001",),
            territory_description="",
        )
    (event,) = gang.collect_events()
    return event


def test_every_event_type_is_audited():
    assert set(EVENT_TYPES) == set(ALL_EVENT_TYPES)


def test_a_row_from_the_stored_payload_equals_one_from_the_decoded_event():
    event = registered_gang()
    key = EncryptionKey("unit-1", b"u" * KEY_BYTES)
    mapper = registry_mapper(Keyring((key,), key.key_id).cipher())
    stored = mapper.to_stored_event(event)
    assert b"bob@police.brussels" not in stored.state  # encrypted at rest
    common = {
        "position": 42,
        "event_type": "GangRegistered",
        "originator_id": event.originator_id,
        "originator_version": 1,
    }
    decoded: list[StoredEvent] = []

    def decode() -> object:
        decoded.append(stored)
        return mapper.to_domain_event(stored)

    from_payload = audit_row(
        Recorded(**common, decode=decode, payload=lambda: mapper.to_payload(stored))
    )
    assert decoded == []  # the payload was enough: the event was not decoded
    # An event stored by an older version of its class has no payload: it is decoded.
    from_event = audit_row(Recorded(**common, decode=decode, payload=lambda: None))
    assert decoded == [stored]
    assert from_payload == from_event
    assert from_payload.actor == "bob@police.brussels"
    assert (from_payload.request_id, from_payload.correlation_id) == ("gang-1", "case-7")
    assert from_payload.stream_type == "gang"
    assert from_payload.recorded_at == event.timestamp
    assert (from_payload.position, from_payload.stream_version) == (42, 1)


def test_times_round_trip_through_microseconds():
    at = datetime(2025, 2, 5, 5, 10, 0, 123456, tzinfo=UTC)
    assert moment(micros(at)) == at
    assert micros(at.replace(tzinfo=None)) == micros(at)
