"""JSON transcodings for the domain's value objects and enumerations."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from eventsourcing.utils import resolve_topic

from service.domain.values import ENUM_TYPES, VALUE_TYPES
from service.store.cipher import EncryptionKeyError, check_readable, is_encrypted


class EnumAsValue(Transcoding):
    """Stores an enumeration member as its value."""

    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = enum_type.__name__
        self._members = {member.value: member for member in enum_type}

    def encode(self, obj: Enum) -> Any:
        """Return the member's value."""
        return obj.value

    def decode(self, data: Any) -> Enum:
        """Return the member with the stored value (a dict lookup: Enum's call is slow)."""
        try:
            return self._members[data]
        except (KeyError, TypeError):
            member: Enum = self.type(data)  # raises the enumeration's own ValueError
            return member


class FrozenDataclassAsDict(Transcoding):
    """Stores a frozen value dataclass as a dict of its fields (lists come back as tuples)."""

    def __init__(self, value_type: type) -> None:
        self.type = value_type
        self.name = value_type.__name__
        self._names = tuple(f.name for f in fields(value_type))
        self._name_set = frozenset(self._names)
        # Building the object without its __init__ is safe only when __init__ does nothing
        # more than assign the fields.
        self._plain = not hasattr(value_type, "__post_init__")

    def encode(self, obj: Any) -> dict[str, Any]:
        """Return the fields as a dict; nested values are transcoded in turn."""
        return {name: getattr(obj, name) for name in self._names}

    def decode(self, data: dict[str, Any]) -> Any:
        """Rebuild the value object.

        When the stored fields are exactly the class's fields, the object is built without
        calling the dataclass's __init__ (which sets each field through object.__setattr__,
        several times slower); otherwise __init__ applies defaults or rejects the fields.
        """
        for key, value in data.items():
            if type(value) is list:
                data[key] = tuple(value)
        if self._plain and data.keys() == self._name_set:
            obj: Any = object.__new__(self.type)
            object.__setattr__(obj, "__dict__", data)
            return obj
        return self.type(**data)


class RegistryTranscoder(JSONTranscoder):
    """The library's JSON transcoder with a faster decoding hook.

    Encoding is the library's. Decoding calls one hook per JSON object; this one looks the
    `_type_` name up in one dict of decode functions, without the library's layers of
    try/except, which makes a typical event decode about a quarter faster.
    """

    def __init__(self) -> None:
        super().__init__()
        self._decoders: dict[str, Callable[[Any], Any]] = {}
        self.decoder = json.JSONDecoder(object_hook=self._decode_obj)

    def register(self, transcoding: Transcoding) -> None:
        """Register a transcoding; its decode function is looked up by name when decoding."""
        super().register(transcoding)
        decode = transcoding.decode
        if isinstance(transcoding, DatetimeAsISO):
            decode = _datetime_from_iso
        self._decoders[transcoding.name] = decode

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        if len(d) != 2 or "_type_" not in d or "_data_" not in d:
            return d
        name = d["_type_"]
        try:
            decode = self._decoders[name]
        except (KeyError, TypeError):
            msg = (
                f"Data serialized with name '{name}' is not deserializable. "
                "Please register a custom transcoding for this type."
            )
            raise TranscodingNotRegisteredError(msg) from None
        return decode(d["_data_"])


def _datetime_from_iso(data: Any) -> datetime:
    if type(data) is not str:
        msg = f"a stored datetime must be an ISO 8601 string, not {data!r}"
        raise TypeError(msg)
    return datetime.fromisoformat(data)


def registry_transcoder() -> JSONTranscoder:
    """Return a JSON transcoder that knows every type stored in the registry's events."""
    transcoder = RegistryTranscoder()
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

    With a cipher (see service/store/cipher.py) states are encrypted at rest; a state that
    cannot be decrypted — its key is not configured, or no key is — raises
    EncryptionKeyError naming the event, instead of a deserialisation error.
    """

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        """Decode a stored event, restoring tuples (also inside dict-valued attributes)."""
        try:
            domain_event = super().to_domain_event(stored_event)
        except MapperDeserialisationError as err:
            unreadable = self._unreadable(stored_event, err.__cause__)
            if unreadable is None:
                raise
            raise unreadable from err
        state = vars(domain_event)
        for name, value in state.items():
            kind = type(value)
            if kind is list:
                state[name] = tuple(value)
            elif kind is dict:
                for key, item in value.items():
                    if type(item) is list:
                        value[key] = tuple(item)
        return domain_event

    def to_payload(self, stored_event: StoredEvent) -> dict[str, Any] | None:
        """The stored attributes as plain JSON, without building the domain event.

        Values of registered types stay in their stored form, `{"_type_": name, "_data_":
        value}` (see `stored_time`). None when the event was stored by an older version of
        its class: decode it with `to_domain_event`, so that its upcasters run.
        """
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            payload: dict[str, Any] = json.loads(state)
        except (EncryptionKeyError, ValueError) as err:
            unreadable = self._unreadable(stored_event, err)
            if unreadable is None:
                raise
            raise unreadable from err
        stored_version = payload.get("class_version", 1)
        if stored_version != getattr(resolve_topic(stored_event.topic), "class_version", 1):
            return None
        return payload

    def check_readable(self, stored_event: StoredEvent) -> None:
        """Raise EncryptionKeyError unless the event's state can be decrypted (when it is
        encrypted) with this mapper's keys: a cheap check of one event, e.g. the head."""
        try:
            check_readable(stored_event.state, self.cipher)
        except EncryptionKeyError as err:
            raise _with_event(err, stored_event) from None

    def _unreadable(
        self, stored_event: StoredEvent, cause: BaseException | None
    ) -> EncryptionKeyError | None:
        """EncryptionKeyError naming the event when its state failed to decode because of
        its encryption (None: for another reason)."""
        if isinstance(cause, EncryptionKeyError):
            return _with_event(cause, stored_event)
        if self.cipher is None and is_encrypted(stored_event.state):
            try:
                check_readable(stored_event.state, None)
            except EncryptionKeyError as err:
                return _with_event(err, stored_event)
        return None


def _with_event(err: EncryptionKeyError, stored_event: StoredEvent) -> EncryptionKeyError:
    """The same error, naming the event it is about."""
    where = f"event {stored_event.originator_version} of stream {stored_event.originator_id}"
    position = getattr(stored_event, "id", None)
    if position is not None:
        where += f" (position {position})"
    return EncryptionKeyError(
        f"{where} cannot be read: {err.description}", key_id=err.key_id, subject=where
    )


def stored_time(value: dict[str, Any]) -> datetime:
    """A datetime from its stored form in a payload (see RegistryMapper.to_payload)."""
    return datetime.fromisoformat(value["_data_"])


def registry_mapper(cipher: Cipher | None = None) -> RegistryMapper:
    """Return the mapper between domain events and stored events.

    With a `cipher` (e.g. service.store.cipher.KeyringCipher), states are encrypted at rest.
    """
    return RegistryMapper(transcoder=registry_transcoder(), cipher=cipher)
