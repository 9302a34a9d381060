"""What a projection is: tables, the event types it reads, and how a batch of them changes rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.store import ViewTransaction
from service.store.transcoding import RegistryMapper

_UNSET: Any = object()


class Recorded:
    """One event of the log as a projection sees it.

    `event` is the domain event, decoded on first use; `payload()` gives its stored
    attributes as plain JSON, much cheaper to read, for projections that need a few fields.
    """

    __slots__ = (
        "_decode",
        "_event",
        "_payload",
        "event_type",
        "originator_id",
        "originator_version",
        "position",
    )

    def __init__(
        self,
        *,
        position: int,
        event_type: str,
        originator_id: UUID,
        originator_version: int,
        event: Any = _UNSET,
        decode: Callable[[], Any] | None = None,
        payload: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.position = position
        self.event_type = event_type
        self.originator_id = originator_id
        self.originator_version = originator_version
        self._event = event
        self._decode = decode
        self._payload = payload

    @classmethod
    def stored(cls, notification: Notification, mapper: RegistryMapper) -> Recorded:
        """An event of the log, decoded only when (and as far as) a projection reads it."""
        return cls(
            position=notification.id,
            event_type=notification.topic.rpartition(".")[2],
            originator_id=_uuid(notification.originator_id),
            originator_version=notification.originator_version,
            decode=lambda: mapper.to_domain_event(notification),
            payload=lambda: mapper.to_payload(notification),
        )

    @property
    def event(self) -> Any:
        """The domain event."""
        if self._event is _UNSET:
            assert self._decode is not None, "a Recorded needs an event or a decoder"
            self._event = self._decode()
        return self._event

    def payload(self) -> dict[str, Any] | None:
        """The stored attributes as plain JSON (see RegistryMapper.to_payload), if available."""
        return self._payload() if self._payload is not None else None


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


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
