"""What the application needs from an event store backend, whatever the database."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from service.store.notify import CommitNotifier


@dataclass(frozen=True)
class IdempotencyRecord:
    """The outcome of an accepted write, kept under its request id."""

    request_id: str
    fingerprint: str
    aggregate_id: UUID
    version: int
    position: int


@dataclass(frozen=True)
class PendingWrite:
    """The stored events of one accepted request, to be appended atomically with its record.

    `tags` holds, for each event, the tags (e.g. "municipality:21001") it can be filtered by.
    `subject_keys` are new data subjects' keys (stored form, see service/store/field_cipher.py)
    to insert, and `erased_subjects` the subjects whose keys to delete, in the same transaction.
    """

    request_id: str
    fingerprint: str
    aggregate_id: UUID
    version: int
    events: Sequence[StoredEvent]
    tags: Sequence[Sequence[str]]
    subject_keys: Mapping[UUID, bytes] = field(default_factory=dict)
    erased_subjects: Sequence[UUID] = ()


@dataclass(frozen=True)
class LogPage:
    """Stored events read from the global log, and the head when they were read."""

    notifications: Sequence[Notification]
    head: int


class AppendConflictError(Exception):
    """Raised when an append lost a race: a stream version or request id was taken."""


class BackendUnavailableError(Exception):
    """Raised when the database cannot be reached or is locked past the timeout."""


class SchemaNotReadyError(Exception):
    """Raised at start when the store's tables are missing and creating them is not allowed."""


REGISTRY_TABLES = ("stored_events", "accepted_requests", "event_tags", "subject_keys")
"""The event store's tables, on every backend."""


def missing_schema_error(missing: Sequence[str], where: str) -> SchemaNotReadyError:
    """The error for a store opened without migrating whose tables are not there."""
    return SchemaNotReadyError(
        f"the event store at {where} has no table {', '.join(missing)}: "
        "run `incident-registry-server migrate` (or start with INCIDENTS_MIGRATE_ON_START=true)"
    )


class EventStoreBackend(ABC):
    """Appends batches of writes in one transaction and reads streams and requests."""

    @abstractmethod
    def append(self, writes: Sequence[PendingWrite]) -> list[int]:
        """Append every write's events and idempotency record in one transaction.

        Returns each write's position (that of its last event). Raises AppendConflictError
        if any stream version or request id was taken concurrently; nothing is written then.
        """

    @abstractmethod
    def append_events(
        self,
        events: Sequence[StoredEvent],
        tags: Sequence[Sequence[str]],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> list[int]:
        """Append prepared events with their tags in one transaction, without request records.

        This is how imported events are written: they carry their own metadata. Positions are
        issued and followers told exactly as for `append`. Returns each event's position.
        Raises AppendConflictError if any stream version is taken; nothing is written then.
        `before_commit` runs inside the transaction once the events are written (e.g. to wait
        for checks that ran meanwhile); if it raises, nothing is written and its exception
        propagates.
        """

    @abstractmethod
    def stream_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Return the last version of each of the given streams that has events."""

    @abstractmethod
    def read_streams(self, stream_ids: Sequence[UUID]) -> dict[UUID, list[Notification]]:
        """Return every stored event of the given streams (those that have any), in order."""

    @abstractmethod
    def read_tags(self, after: int, upto: int) -> dict[int, list[str]]:
        """Return the sorted tags of the events after position `after` up to `upto`, by
        position; events without tags are left out."""

    @abstractmethod
    def find_requests(self, request_ids: Sequence[str]) -> dict[str, IdempotencyRecord]:
        """Return the records of the given request ids that were already accepted."""

    @abstractmethod
    def read_stream(
        self,
        aggregate_id: UUID,
        *,
        from_version: int | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Notification]:
        """Return stored events of one aggregate with their log positions.

        Forwards from `from_version` (default the first), or backwards from it (default the
        last), at most `limit` of them.
        """

    @abstractmethod
    def read_page(
        self,
        *,
        after: int = 0,
        before: int | None = None,
        limit: int,
        topics: Sequence[str] = (),
        tags: Sequence[str] = (),
        descending: bool = False,
    ) -> LogPage:
        """Read matching events of the global log in one consistent snapshot.

        Forwards: positions after `after`, up to the head. Backwards: positions before
        `before` (default: up to the head), newest first. An event matches when its topic is
        one of `topics` (if any) and it carries one of `tags` (if any).
        """

    @abstractmethod
    def read_subject_keys(self, subject_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """Return the stored keys of the given data subjects that still have one."""

    @abstractmethod
    def head(self) -> int:
        """Return the position of the last event in the log (0 when empty)."""

    @abstractmethod
    def last_notification(self) -> Notification | None:
        """Return the stored event at the head of the log, if any."""

    @property
    @abstractmethod
    def notifier(self) -> CommitNotifier:
        """Told after every commit made through this backend (not other processes')."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
