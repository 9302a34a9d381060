"""Scalar conversions: times, durations, ids and enums."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Generic, TypeVar
from uuid import UUID

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

if TYPE_CHECKING:
    # Only the stubs have the generic wrapper the generated enums are typed with.
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

E = TypeVar("E", bound=Enum)
V = TypeVar("V", bound=int)


def timestamp(value: datetime) -> Timestamp:
    """An aware datetime as a Timestamp; naive datetimes are refused (their zone is unknown)."""
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"{value!r} is naive: give an aware datetime, e.g. datetime.now(UTC)"
        raise ValueError(msg)
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def optional_timestamp(value: datetime | None) -> Timestamp | None:
    """`timestamp(value)`, or None (the field stays unset)."""
    return None if value is None else timestamp(value)


def time_field(message: Message, name: str) -> datetime | None:
    """The Timestamp field `name` of `message` as an aware UTC datetime, None when unset."""
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def duration(value: Duration) -> timedelta:
    """A Duration as a timedelta."""
    return value.ToTimedelta()


def uuid(value: str) -> UUID:
    """An id the server sent."""
    return UUID(value)


def optional_uuid(value: str) -> UUID | None:
    """An id the server sent, None when empty."""
    return UUID(value) if value else None


def uuids(values: Iterable[str]) -> tuple[UUID, ...]:
    """Ids the server sent (a repeated string field)."""
    return tuple(UUID(value) for value in values)


def id_text(value: UUID | str) -> str:
    """An id for a request: a UUID, or its text form (checked here, not by the server)."""
    return str(value if isinstance(value, UUID) else UUID(value))


def _prefix(descriptor_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", descriptor_name).upper() + "_"


class EnumMap(Generic[E, V]):
    """Maps a Python enum to a protobuf enum by name: `WeaponKind.HANDGUN` <-> 1.

    The protobuf value is `<ENUM_NAME>_<MEMBER>`, e.g. WEAPON_KIND_HANDGUN; its UNSPECIFIED
    (0) value has no member and stands for None.
    """

    def __init__(self, python: type[E], proto: _EnumTypeWrapper[V]) -> None:
        self.python = python
        self.proto = proto
        prefix = _prefix(proto.DESCRIPTOR.name)
        self._to_proto: dict[E, V] = {
            member: proto.Value(prefix + member.name) for member in python
        }
        self._from_proto: dict[int, E] = {
            number: member for member, number in self._to_proto.items()
        }
        self.unspecified: V = proto.Value(prefix + "UNSPECIFIED")

    def to_proto(self, member: E) -> V:
        """The protobuf number of `member`."""
        return self._to_proto[self.python(member)]

    def optional_to_proto(self, member: E | None) -> V:
        """The protobuf number of `member`, UNSPECIFIED for None."""
        return self.unspecified if member is None else self.to_proto(member)

    def from_proto(self, number: int) -> E:
        """The member for a number the server sent; ValueError for an unknown number."""
        try:
            return self._from_proto[number]
        except KeyError:
            msg = f"{self.proto.DESCRIPTOR.full_name} value {number} has no {self.python.__name__}"
            raise ValueError(msg) from None

    def optional_from_proto(self, number: int) -> E | None:
        """The member for a number the server sent, None for UNSPECIFIED."""
        return None if number == self.unspecified else self.from_proto(number)
