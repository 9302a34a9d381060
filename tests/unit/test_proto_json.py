"""The fast payload JSON equals protobuf's own JSON mapping for every event payload type."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from incident_registry_client.proto.incidents.v1 import events_pb2

from service.api.proto_json import message_to_dict

PAYLOAD_FIELDS = list(events_pb2.EventEnvelope.DESCRIPTOR.oneofs_by_name["payload"].fields)


def _fill(message: Message) -> Message:
    """Set every field of `message` (and of its sub-messages) to a non-default value."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Timestamp":
        message.FromJsonString("2024-06-01T09:30:15.250Z")  # type: ignore[attr-defined]
        return message
    if descriptor.full_name == "google.protobuf.FieldMask":
        message.paths.extend(["occurred_at", "weapons"])  # type: ignore[attr-defined]
        return message
    for field in descriptor.fields:
        values = [_value(field) for _ in range(2 if field.is_repeated else 1)]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                for value in values:
                    getattr(message, field.name).add().CopyFrom(value)
            else:
                getattr(message, field.name).CopyFrom(values[0])
        elif field.is_repeated:
            getattr(message, field.name).extend(values)
        else:
            setattr(message, field.name, values[0])
    return message


def _value(field: Any) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return _fill(message_factory.GetMessageClass(field.message_type)())
    if kind == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if kind == FieldDescriptor.TYPE_STRING:
        return f"{field.name} é ☂"
    if kind == FieldDescriptor.TYPE_BOOL:
        return True
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 2.5
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
        return 9_007_199_254_740_993  # beyond a double's exact integers
    return 42


@pytest.mark.parametrize("field", PAYLOAD_FIELDS, ids=lambda f: f.name)
def test_fast_json_equals_protobuf_json_for_every_payload_type(field):
    payload = _fill(message_factory.GetMessageClass(field.message_type)())
    expected = json_format.MessageToDict(payload, preserving_proto_field_name=True)
    assert message_to_dict(payload) == expected


def test_unset_fields_are_left_out_like_protobuf_does():
    payload = events_pb2.CasualtiesRevised(killed=1)
    assert message_to_dict(payload) == {"killed": 1}
