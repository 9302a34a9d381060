"""Datetime to protobuf Timestamp."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp


def stamp(value: datetime | None) -> Timestamp | None:
    """Return a Timestamp for `value`, or None so the field stays unset."""
    if value is None:
        return None
    result = Timestamp()
    result.FromDatetime(value)
    return result
