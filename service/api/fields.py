"""Reading protobuf fields into domain values, collecting every invalid field."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import TypeVar
from uuid import UUID

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from incident_registry_client.proto.incidents.v1 import common_pb2

from service.api.enums import EnumTable
from service.app.validation import Violations
from service.domain.values import GeoPoint

E = TypeVar("E", bound=Enum)

MAX_REQUEST_ID = 128
_NIL = UUID(int=0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FieldReader(Violations):
    """Converts request fields; invalid ones are recorded and replaced by placeholders.

    Call `raise_if_any()` before using the values: placeholders never reach the domain.
    """

    def uuid(self, value: str, field: str) -> UUID:
        """A required UUID in its canonical text form."""
        if not self.check(bool(value), field, "is required"):
            return _NIL
        try:
            return UUID(value)
        except ValueError:
            self.check(False, field, f"must be a UUID, not {value[:64]!r}")
            return _NIL

    def optional_uuid(self, value: str, field: str) -> UUID | None:
        """A UUID, or None when empty."""
        return self.uuid(value, field) if value else None

    def uuids(self, values: Sequence[str], field: str) -> tuple[UUID, ...]:
        """A list of UUIDs."""
        return tuple(self.uuid(value, f"{field}[{i}]") for i, value in enumerate(values))

    def time(
        self, message: Message, field: str, *, required: bool, path: str = ""
    ) -> datetime | None:
        """A timestamp field (None when absent and optional); `path` names it in errors."""
        path = path or field
        if not message.HasField(field):
            self.check(not required, path, "is required")
            return None
        stamp: Timestamp = getattr(message, field)
        try:
            return stamp.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            self.check(False, path, "is not a valid timestamp")
            return None

    def required_time(self, message: Message, field: str) -> datetime:
        """A required timestamp field."""
        return self.time(message, field, required=True) or _EPOCH

    def enum(self, number: int, table: EnumTable[E], field: str) -> E:
        """A required enum value; UNSPECIFIED and unknown numbers are violations."""
        member = table.domain(number)
        if member is None:
            self.check(False, field, f"must be a known {table.proto_name} other than UNSPECIFIED")
            return next(iter(table._to_domain.values()))  # noqa: SLF001 - placeholder only
        return member

    def geo_point(self, message: Message, field: str) -> GeoPoint | None:
        """An optional coordinate message."""
        if not message.HasField(field):
            return None
        point: common_pb2.GeoPoint = getattr(message, field)
        return GeoPoint(latitude=point.latitude, longitude=point.longitude)

    def request_id(self, value: str) -> str:
        """The client's idempotency key: non-blank and short."""
        self.check(bool(value.strip()), "request_id", "is required (a unique idempotency key)")
        self.check(
            len(value) <= MAX_REQUEST_ID,
            "request_id",
            f"must be at most {MAX_REQUEST_ID} characters",
        )
        return value

    def expected_version(self, message: Message) -> int | None:
        """The optional expected version, never negative."""
        if not message.HasField("expected_version"):
            return None
        version: int = message.expected_version  # type: ignore[attr-defined]
        self.check(version >= 0, "expected_version", "must not be negative")
        return version
