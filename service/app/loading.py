"""Rebuilds aggregates from their stored events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import Mapper

from service.app.results import RecordedEvent
from service.domain.base import RegistryAggregate
from service.store.base import EventStoreBackend


class AggregateLoader:
    """Reads one stream and replays it into its aggregate."""

    def __init__(self, backend: EventStoreBackend, mapper: Mapper[Any]) -> None:
        self._backend = backend
        self._mapper = mapper

    def load(self, aggregate_id: UUID) -> RegistryAggregate | None:
        """Return the aggregate's current state, or None if it has no events."""
        return self.load_with_history(aggregate_id)[0]

    def load_with_history(
        self, aggregate_id: UUID
    ) -> tuple[RegistryAggregate | None, list[RecordedEvent]]:
        """Return the aggregate and every event it was built from, with log positions."""
        aggregate: Any = None
        history: list[RecordedEvent] = []
        for notification in self._backend.read_stream(aggregate_id):
            domain_event = self._mapper.to_domain_event(notification)
            assert isinstance(domain_event, CanMutateAggregate)
            aggregate = domain_event.mutate(aggregate)
            history.append(RecordedEvent(position=notification.id, event=domain_event))
        if aggregate is not None and not isinstance(aggregate, RegistryAggregate):
            return None, []
        return aggregate, history
