"""What a projection is: tables, the event types it reads, and how a batch of them changes rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from projections.store import ViewTransaction


@dataclass(frozen=True)
class Recorded:
    """One event of the log as a projection sees it."""

    position: int
    event_type: str
    originator_id: UUID
    originator_version: int
    event: Any


class Projection(ABC):
    """A read model built from the log.

    `apply` runs inside the transaction that also moves the projection's tracked position, so
    its rows reflect each event exactly once; it must depend only on the events and on the rows
    it wrote before (a rebuilt model is identical to one that ran live).
    """

    name: ClassVar[str]
    """Unique name, used in projection_state and by operators."""
    version: ClassVar[int]
    """Bumped when the meaning of the rows changes: the model is then rebuilt on start."""
    event_types: ClassVar[tuple[str, ...]]
    """The event types the projection reads (the runner reads only those from the log)."""
    tables: ClassVar[tuple[str, ...]]
    """The tables it owns: emptied on reset, dropped when the version changes."""
    schema: ClassVar[tuple[str, ...]]
    """CREATE TABLE/INDEX IF NOT EXISTS statements for its tables (SQLite and PostgreSQL)."""

    @abstractmethod
    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Fold a batch of events (in log order) into the projection's rows."""

    def describe(self) -> str:
        """One line on what the projection holds."""
        return (self.__doc__ or self.name).strip().splitlines()[0]
