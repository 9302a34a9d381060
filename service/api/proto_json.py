"""A faster protobuf-to-JSON-dict for event payloads, equal to `json_format.MessageToDict`.

It walks only the fields that are set (`ListFields`, implemented in C) and follows the proto3
JSON mapping for what event payloads contain: 64-bit integers as strings, enums by name,
Timestamp and FieldMask in their JSON forms, nested and repeated messages, and original field
names. A test holds it equal to `MessageToDict(..., preserving_proto_field_name=True)` for
every payload type.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_AS_STRING = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_SINT64,
    }
)
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_WELL_KNOWN_AS_STRING = frozenset({"google.protobuf.Timestamp", "google.protobuf.FieldMask"})


def message_to_dict(message: Message) -> dict[str, Any]:
    """Return the proto3 JSON mapping of `message` as a dict (original field names)."""
    result: dict[str, Any] = {}
    for field, value in message.ListFields():
        convert = _converter(field)
        if field.is_repeated:
            result[field.name] = [convert(item) for item in value]
        else:
            result[field.name] = convert(value)
    return result


@functools.cache
def _converter(field: FieldDescriptor) -> Callable[[Any], Any]:
    """Return the conversion of one field's values (built once per field)."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        well_known = field.message_type.full_name in _WELL_KNOWN_AS_STRING
        return _to_json_string if well_known else message_to_dict
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        values = field.enum_type.values_by_number
        names = {number: value.name for number, value in values.items()}
        return lambda number: names.get(number, number)
    return _SCALARS.get(kind, _same)


def _to_json_string(message: Any) -> str:
    text: str = message.ToJsonString()
    return text


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _same(value: Any) -> Any:
    return value


def _bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_SCALARS: dict[int, Callable[[Any], Any]] = {
    **dict.fromkeys(_AS_STRING, str),
    **dict.fromkeys(_FLOATS, _float),
    FieldDescriptor.TYPE_BYTES: _bytes,
}
