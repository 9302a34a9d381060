"""The registry's event types, by name and by stream type, for filtering the log."""

from __future__ import annotations

from collections.abc import Iterable

from eventsourcing.utils import get_topic

from service.domain.asset_case import AssetCase
from service.domain.base import RegistryAggregate
from service.domain.command import MunicipalityCommandSlot, UnifiedCommand
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.wave import ViolenceWave

AGGREGATES: tuple[type[RegistryAggregate], ...] = (
    Incident,
    Gang,
    UnifiedCommand,
    MunicipalityCommandSlot,
    AssetCase,
    ViolenceWave,
)


def _event_classes(aggregate: type[RegistryAggregate]) -> list[type]:
    return [
        value
        for value in vars(aggregate).values()
        if isinstance(value, type)
        and issubclass(value, RegistryAggregate.Event)
        and value.__name__ not in {"Event", "Created"}  # the library's own base classes
    ]


STREAM_TYPES: dict[str, type[RegistryAggregate]] = {a.STREAM_TYPE: a for a in AGGREGATES}
EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls for aggregate in AGGREGATES for cls in _event_classes(aggregate)
}
STREAM_TYPE_OF_EVENT: dict[str, str] = {
    cls.__name__: aggregate.STREAM_TYPE
    for aggregate in AGGREGATES
    for cls in _event_classes(aggregate)
}
TOPICS_BY_EVENT_TYPE: dict[str, str] = {name: get_topic(cls) for name, cls in EVENT_TYPES.items()}


def topics_for(event_types: Iterable[str], stream_types: Iterable[str]) -> tuple[str, ...]:
    """Return the stored topics matching any of the event types AND any of the stream types.

    An empty selection means "all"; names must be known (see EVENT_TYPES and STREAM_TYPES).
    """
    wanted_types = set(event_types) or set(EVENT_TYPES)
    wanted_streams = set(stream_types) or set(STREAM_TYPES)
    return tuple(
        sorted(
            TOPICS_BY_EVENT_TYPE[name]
            for name in wanted_types
            if STREAM_TYPE_OF_EVENT[name] in wanted_streams
        )
    )
