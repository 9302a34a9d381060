"""JSON transcodings for the domain's value objects and enumerations."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import resolve_topic

from service.domain.values import ENUM_TYPES, VALUE_TYPES


class EnumAsValue(Transcoding):
    """Stores an enumeration member as its value."""

    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = enum_type.__name__

    def encode(self, obj: Enum) -> Any:
        """Return the member's value."""
        return obj.value

    def decode(self, data: Any) -> Enum:
        """Return the member with the stored value."""
        member: Enum = self.type(data)
        return member


class FrozenDataclassAsDict(Transcoding):
    """Stores a frozen value dataclass as a dict of its fields (lists come back as tuples)."""

    def __init__(self, value_type: type) -> None:
        self.type = value_type
        self.name = value_type.__name__
        self._names = tuple(f.name for f in fields(value_type))

    def encode(self, obj: Any) -> dict[str, Any]:
        """Return the fields as a dict; nested values are transcoded in turn."""
        return {name: getattr(obj, name) for name in self._names}

    def decode(self, data: dict[str, Any]) -> Any:
        """Rebuild the value object."""
        return self.type(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def registry_transcoder() -> JSONTranscoder:
    """Return a JSON transcoder that knows every type stored in the registry's events."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DecimalAsStr())
    transcoder.register(DatetimeAsISO())
    for enum_type in ENUM_TYPES:
        transcoder.register(EnumAsValue(enum_type))
    for value_type in VALUE_TYPES:
        transcoder.register(FrozenDataclassAsDict(value_type))
    return transcoder


class RegistryMapper(Mapper[Any]):
    """The library's mapper, giving back as tuples the sequences JSON stores as arrays.

    Event attributes are immutable tuples when triggered; without this a decoded event
    would hold lists and no longer equal the event that was stored.
    """

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        """Decode a stored event, restoring tuples (also inside dict-valued attributes)."""
        domain_event = super().to_domain_event(stored_event)
        state = vars(domain_event)
        for name, value in state.items():
            if isinstance(value, list):
                state[name] = tuple(value)
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, list):
                        value[key] = tuple(item)
        return domain_event

    def to_payload(self, stored_event: StoredEvent) -> dict[str, Any] | None:
        """The stored attributes as plain JSON, without building the domain event.

        Values of registered types stay in their stored form, `{"_type_": name, "_data_":
        value}` (see `stored_time`). None when the event was stored by an older version of
        its class: decode it with `to_domain_event`, so that its upcasters run.
        """
        state = stored_event.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        payload: dict[str, Any] = json.loads(state)
        stored_version = payload.get("class_version", 1)
        if stored_version != getattr(resolve_topic(stored_event.topic), "class_version", 1):
            return None
        return payload


def stored_time(value: dict[str, Any]) -> datetime:
    """A datetime from its stored form in a payload (see RegistryMapper.to_payload)."""
    return datetime.fromisoformat(value["_data_"])


def registry_mapper() -> RegistryMapper:
    """Return the mapper between domain events and stored events."""
    return RegistryMapper(transcoder=registry_transcoder())
