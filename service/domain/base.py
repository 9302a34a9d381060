"""The aggregate base class: every event carries business time, metadata and a schema version."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Self

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate

_metadata: ContextVar[Mapping[str, str]] = ContextVar(
    "event_metadata", default=MappingProxyType({})
)


@contextmanager
def recording_metadata(metadata: Mapping[str, str]) -> Iterator[None]:
    """Stamp every event triggered inside the block with `metadata` (actor, request id...)."""
    token = _metadata.set(dict(metadata))
    try:
        yield
    finally:
        _metadata.reset(token)


class RegistryAggregate(Aggregate):
    """Base of the registry's aggregates.

    Event metadata is supplied by the application around a command rather than through every
    command method, so that domain methods speak only of the domain.
    """

    STREAM_TYPE: ClassVar[str] = ""

    def tags(self) -> frozenset[str]:
        """Tags that subscribers filter this aggregate's events by, e.g. "municipality:21001"."""
        return frozenset()

    class Event(Aggregate.Event):
        """Base of every registry event."""

        class_version = 1
        occurred_at: datetime
        metadata: dict[str, str]

    def trigger_event(
        self,
        event_class: type[CanMutateAggregate[Any]],
        **kwargs: Any,
    ) -> None:
        """Trigger an event stamped with the current metadata."""
        kwargs.setdefault("metadata", dict(_metadata.get()))
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(
        cls,
        event_class: type[CanInitAggregate[Any]],
        **kwargs: Any,
    ) -> Self:
        kwargs.setdefault("metadata", dict(_metadata.get()))
        return super()._create(event_class, **kwargs)
