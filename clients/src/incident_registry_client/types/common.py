"""Values shared by every area of the API: write results, coordinates, aggregates with history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar
from uuid import UUID

if TYPE_CHECKING:
    from incident_registry_client.types.events import RecordedEvent

T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    """Where an accepted write landed: the aggregate, its new version and the log position.

    `replayed` is true when the registry had already accepted this request id and wrote
    nothing; it can be true for a first call too when the client retried it automatically.
    """

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = False


@dataclass(frozen=True)
class GeoPoint:
    """A WGS 84 coordinate in decimal degrees."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class Aggregate(Generic[T]):
    """The current state of an aggregate and every event recorded for it, oldest first."""

    state: T
    history: tuple[RecordedEvent, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, the token of the next page ("" on the last) and the position.

    `position` is the log position the read model reflected when it served the page.
    """

    items: tuple[T, ...]
    next_page_token: str
    position: int
