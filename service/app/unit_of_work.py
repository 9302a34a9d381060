"""A unit of work: the aggregates one command reads and changes, isolated until it succeeds."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from service.domain.base import RegistryAggregate
from service.domain.errors import NotFoundError, VersionConflictError

A = TypeVar("A", bound=RegistryAggregate)

Loader = Callable[[UUID], RegistryAggregate | None]


class UnitOfWork:
    """Loads aggregates for one command and collects the events it triggers.

    Aggregates already changed by earlier commands of the same batch come from `shared`
    (deep-copied, so a failing command leaves no trace); others are loaded from the store.
    """

    def __init__(self, load: Loader, shared: dict[UUID, RegistryAggregate]) -> None:
        self._load = load
        self._shared = shared
        self._touched: dict[UUID, RegistryAggregate] = {}
        self._tags_before: dict[UUID, frozenset[str]] = {}
        self.subject_keys: dict[UUID, bytes] = {}
        """New data subjects' keys (stored form), inserted with this command's events."""
        self.erased_subjects: list[UUID] = []
        """Data subjects whose keys are deleted with this command's events."""

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """Return the aggregate, or None when it does not exist."""
        if aggregate_id in self._touched:
            found: RegistryAggregate | None = self._touched[aggregate_id]
        elif aggregate_id in self._shared:
            found = copy.deepcopy(self._shared[aggregate_id])
        else:
            found = self._load(aggregate_id)
        if found is None:
            return None
        if not isinstance(found, cls):
            return None
        if aggregate_id not in self._touched:
            self._touched[aggregate_id] = found
            self._tags_before[aggregate_id] = found.tags()
        return found

    def get(self, cls: type[A], aggregate_id: UUID, expected_version: int | None = None) -> A:
        """Return the aggregate; raise NotFoundError or VersionConflictError."""
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFoundError(cls.STREAM_TYPE, str(aggregate_id))
        if expected_version is not None and expected_version != found.version:
            raise VersionConflictError(str(aggregate_id), expected_version, found.version)
        return found

    def add(self, aggregate: A, expected_version: int | None = None) -> A:
        """Track a newly created aggregate; a non-zero expected version conflicts."""
        if expected_version not in (None, 0):
            raise VersionConflictError(str(aggregate.id), expected_version, 0)
        self._touched[aggregate.id] = aggregate
        return aggregate

    def collect(self) -> list[tuple[CanMutateAggregate[Any], frozenset[str]]]:
        """Take the pending events of every touched aggregate, each with its tags.

        An event is tagged with its aggregate's tags before and after the command, so that a
        subscriber following a gang also sees the retraction that removes the gang's tag.
        """
        events: list[tuple[CanMutateAggregate[Any], frozenset[str]]] = []
        for aggregate_id, aggregate in self._touched.items():
            pending = aggregate.collect_events()
            if pending:
                tags = self._tags_before.get(aggregate_id, frozenset()) | aggregate.tags()
                events.extend((event, tags) for event in pending)
        return events

    def publish(self) -> None:
        """Make this command's changes visible to the next commands of the batch."""
        self._shared.update(self._touched)
