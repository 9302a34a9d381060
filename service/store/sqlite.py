"""The embedded SQLite event store: the library's recorder, plus idempotency and batch appends."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
    Subscription,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)

from service.store.base import (
    REGISTRY_TABLES,
    AppendConflictError,
    BackendUnavailableError,
    EventStoreBackend,
    IdempotencyRecord,
    LogPage,
    PendingWrite,
    missing_schema_error,
)
from service.store.notify import CommitNotifier
from service.store.sqlite_subscription import DEFAULT_POLL_INTERVAL, SQLiteSubscription

log = structlog.get_logger(__name__)

EVENTS_TABLE = "stored_events"
REQUESTS_TABLE = "accepted_requests"
TAGS_TABLE = "event_tags"
SUBJECT_KEYS_TABLE = "subject_keys"


class _DurableConnectionPool(SQLiteConnectionPool):
    """Connections with an explicit durability level and foreign-key checks."""

    def __init__(self, *, synchronous: str, **kwargs: object) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        raw = connection._sqlite_conn  # noqa: SLF001 - the library keeps it private
        raw.execute(f"PRAGMA synchronous={self.synchronous}")
        # A deleted subject key is overwritten with zeros, not left in a free page.
        raw.execute("PRAGMA secure_delete=ON")
        return connection


class RegistrySQLiteDatastore(SQLiteDatastore):
    """A file-backed SQLite datastore in WAL mode with a chosen `synchronous` level."""

    def __init__(self, path: str, *, synchronous: str = "FULL", lock_timeout: int = 10) -> None:
        if synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            msg = f"unsupported SQLite synchronous level {synchronous!r}"
            raise ValueError(msg)
        super().__init__(path, lock_timeout=lock_timeout)
        self.pool = _DurableConnectionPool(
            synchronous=synchronous, db_name=path, lock_timeout=lock_timeout
        )


class RegistrySQLiteRecorder(SQLiteApplicationRecorder):
    """The library's application recorder with request and tag tables, and subscriptions.

    Every commit through this recorder notifies `notifier`, so that followers in this process
    see new events at once; followers of commits made by other processes poll the head.
    """

    def __init__(
        self,
        datastore: SQLiteDatastore,
        events_table_name: str = EVENTS_TABLE,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__(datastore, events_table_name)
        self.notifier = CommitNotifier()
        self.poll_interval = poll_interval

    def construct_create_table_statements(self) -> list[str]:
        """Add the accepted-requests and event-tags tables to the library's events table."""
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {REQUESTS_TABLE} ("
            "request_id TEXT PRIMARY KEY, "
            "fingerprint TEXT NOT NULL, "
            "aggregate_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, "
            "position INTEGER NOT NULL) WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {TAGS_TABLE} ("
            "tag TEXT NOT NULL, "
            "position INTEGER NOT NULL, "
            "PRIMARY KEY (tag, position)) WITHOUT ROWID",
            # Exports read the tags of a range of positions.
            f"CREATE INDEX IF NOT EXISTS {TAGS_TABLE}_by_position ON {TAGS_TABLE} (position)",
            f"CREATE TABLE IF NOT EXISTS {SUBJECT_KEYS_TABLE} ("
            "subject_id TEXT PRIMARY KEY, "
            "key BLOB NOT NULL) WITHOUT ROWID",
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert events in their own transaction, then notify followers."""
        ids = super().insert_events(stored_events, **kwargs)
        if ids:
            self.notifier.notify(ids[-1])
        return ids

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """Follow the log after position `gt`: stored events first, then new ones as they come."""
        return SQLiteSubscription(recorder=self, gt=gt, topics=topics)

    def insert_events_with(
        self, cursor: SQLiteCursor, stored_events: Sequence[StoredEvent]
    ) -> Sequence[int]:
        """Insert events within the caller's transaction; return their log positions."""
        return self._insert_events(cursor, stored_events) or []


class SQLiteEventStore(EventStoreBackend):
    """Event store backend on one SQLite file."""

    def __init__(
        self, path: str | Path, *, synchronous: str = "FULL", create_schema: bool = True
    ) -> None:
        """Open the file; create the tables unless `create_schema` is off (then check them)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.datastore = RegistrySQLiteDatastore(str(path), synchronous=synchronous)
        self.recorder = RegistrySQLiteRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        try:
            if create_schema:
                self.recorder.create_table()
            else:
                self._check_schema(str(path))
        except PersistenceError as err:
            self.datastore.close()
            msg = f"cannot open the SQLite event store at {path}: {err}"
            raise BackendUnavailableError(msg) from err
        except BaseException:
            self.datastore.close()
            raise

    def _check_schema(self, where: str) -> None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            present = {row[0] for row in cursor.fetchall()}
        missing = [t for t in REGISTRY_TABLES if t not in present]
        if missing:
            raise missing_schema_error(missing, where)

    def append(self, writes: Sequence[PendingWrite]) -> list[int]:
        """Append all writes and their request records in one transaction."""
        positions: list[int] = []
        try:
            with self.datastore.transaction(commit=True) as cursor:
                for write in writes:
                    ids = self.recorder.insert_events_with(cursor, write.events)
                    assert ids, "the application recorder returns notification ids"
                    position = ids[-1]
                    cursor.execute(
                        f"INSERT INTO {REQUESTS_TABLE} VALUES (?,?,?,?,?)",  # noqa: S608 - constant table
                        (
                            write.request_id,
                            write.fingerprint,
                            write.aggregate_id.hex,
                            write.version,
                            position,
                        ),
                    )
                    positions.append(position)
                    tag_rows = [
                        (tag, event_position)
                        for event_position, tags in zip(ids, write.tags, strict=True)
                        for tag in tags
                    ]
                    if tag_rows:
                        cursor.executemany(
                            f"INSERT INTO {TAGS_TABLE} VALUES (?,?)",  # noqa: S608 - constant
                            tag_rows,
                        )
                    _write_subject_keys(cursor, write)
        except IntegrityError as err:
            raise AppendConflictError(str(err)) from err
        except (OperationalError, sqlite3.OperationalError) as err:
            raise BackendUnavailableError(str(err)) from err
        if any(write.erased_subjects for write in writes):
            self._purge_wal()
        if positions:
            self.recorder.notifier.notify(positions[-1])
        return positions

    def _purge_wal(self) -> None:
        """Checkpoint and truncate the write-ahead log, so that no older copy of a deleted
        subject key stays in it (best effort: a busy reader may defer it to a later one)."""
        try:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except (OperationalError, sqlite3.OperationalError):
            log.warning("subject_key_wal_checkpoint_deferred")

    def read_subject_keys(self, subject_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """Look up the subjects' stored keys, a few hundred per query."""
        found: dict[UUID, bytes] = {}
        for chunk in _chunks(sorted({s.hex for s in subject_ids})):
            marks = ",".join("?" * len(chunk))
            for subject, key in self._select(
                f"SELECT subject_id, key FROM {SUBJECT_KEYS_TABLE} "  # noqa: S608 - constant
                f"WHERE subject_id IN ({marks})",
                chunk,
            ):
                found[UUID(hex=subject)] = bytes(key)
        return found

    def append_events(
        self,
        events: Sequence[StoredEvent],
        tags: Sequence[Sequence[str]],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> list[int]:
        """Append events and their tags in one transaction; return their positions."""
        if not events:
            return []
        rows = [(_text(e.originator_id), e.originator_version, e.topic, e.state) for e in events]
        try:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.executemany(self.recorder.insert_events_statement, rows)
                # The first insert took the write lock. Each row got the largest rowid plus
                # one (the log is never deleted from), so the batch holds consecutive positions.
                cursor.execute(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}")  # noqa: S608
                last = int(cursor.fetchone()[0])
                positions = list(range(last - len(rows) + 1, last + 1))
                tag_rows = [
                    (tag, position)
                    for position, event_tags in zip(positions, tags, strict=True)
                    for tag in event_tags
                ]
                if tag_rows:
                    cursor.executemany(
                        f"INSERT INTO {TAGS_TABLE} VALUES (?,?)",  # noqa: S608 - constant
                        tag_rows,
                    )
                if before_commit is not None:
                    before_commit()
        except IntegrityError as err:
            raise AppendConflictError(str(err)) from err
        except (OperationalError, sqlite3.OperationalError) as err:
            raise BackendUnavailableError(str(err)) from err
        self.recorder.notifier.notify(positions[-1])
        return positions

    def stream_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Look up the streams' last versions, a few hundred streams per query."""
        found: dict[UUID, int] = {}
        for chunk in _chunks([i.hex for i in stream_ids]):
            rows = self._select(
                f"SELECT originator_id, MAX(originator_version) FROM {EVENTS_TABLE} "  # noqa: S608
                f"WHERE originator_id IN ({','.join('?' * len(chunk))}) GROUP BY originator_id",
                chunk,
            )
            found.update((UUID(row[0]), int(row[1])) for row in rows)
        return found

    def read_streams(self, stream_ids: Sequence[UUID]) -> dict[UUID, list[Notification]]:
        """Read whole streams, a few hundred per query."""
        found: dict[UUID, list[Notification]] = {}
        for chunk in _chunks([i.hex for i in stream_ids]):
            rows = self._select(
                f"SELECT rowid, * FROM {EVENTS_TABLE} "  # noqa: S608
                f"WHERE originator_id IN ({','.join('?' * len(chunk))}) "
                "ORDER BY originator_id, originator_version",
                chunk,
            )
            for row in rows:
                notification = _notification(row)
                found.setdefault(UUID(row["originator_id"]), []).append(notification)
        return found

    def read_tags(self, after: int, upto: int) -> dict[int, list[str]]:
        """Read the tags of a range of positions."""
        rows = self._select(
            f"SELECT position, tag FROM {TAGS_TABLE} "  # noqa: S608
            "WHERE position > ? AND position <= ? ORDER BY position, tag",
            [after, upto],
        )
        found: dict[int, list[str]] = {}
        for position, tag in rows:
            found.setdefault(position, []).append(tag)
        return found

    def find_requests(self, request_ids: Sequence[str]) -> dict[str, IdempotencyRecord]:
        """Look up accepted request ids in one query."""
        if not request_ids:
            return {}
        marks = ",".join("?" * len(request_ids))
        rows = self._select(
            f"SELECT * FROM {REQUESTS_TABLE} WHERE request_id IN ({marks})",  # noqa: S608
            list(request_ids),
        )
        return {
            row["request_id"]: IdempotencyRecord(
                request_id=row["request_id"],
                fingerprint=row["fingerprint"],
                aggregate_id=UUID(row["aggregate_id"]),
                version=row["version"],
                position=row["position"],
            )
            for row in rows
        }

    def read_stream(
        self,
        aggregate_id: UUID,
        *,
        from_version: int | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Notification]:
        """Return stored events of one aggregate with their log positions."""
        statement = f"SELECT rowid, * FROM {EVENTS_TABLE} WHERE originator_id=? "  # noqa: S608
        params: list[Any] = [aggregate_id.hex]
        if from_version is not None:
            statement += (
                "AND originator_version<=? " if descending else "AND originator_version>=? "
            )
            params.append(from_version)
        statement += "ORDER BY originator_version " + ("DESC " if descending else "")
        if limit is not None:
            statement += "LIMIT ?"
            params.append(limit)
        return [_notification(row) for row in self._select(statement, params)]

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
        """Read matching events in one read transaction, bounded by the head it sees."""
        conditions = ["rowid>?", "rowid<=?"]
        try:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}")  # noqa: S608
                head = cursor.fetchone()[0] or 0
                upper = head if before is None else min(head, before - 1)
                params: list[Any] = [after, upper]
                if topics:
                    conditions.append(f"topic IN ({','.join('?' * len(topics))})")
                    params.extend(topics)
                if tags:
                    conditions.append(
                        f"rowid IN (SELECT position FROM {TAGS_TABLE} "  # noqa: S608
                        f"WHERE tag IN ({','.join('?' * len(tags))}) "
                        "AND position>? AND position<=?)"
                    )
                    params.extend([*tags, after, upper])
                cursor.execute(
                    f"SELECT rowid, * FROM {EVENTS_TABLE} WHERE {' AND '.join(conditions)} "  # noqa: S608
                    f"ORDER BY rowid {'DESC' if descending else 'ASC'} LIMIT ?",
                    [*params, limit],
                )
                rows = cursor.fetchall()
        except (OperationalError, sqlite3.OperationalError) as err:
            raise BackendUnavailableError(str(err)) from err
        return LogPage([_notification(row) for row in rows], head)

    def last_notification(self) -> Notification | None:
        """Return the stored event at the head."""
        rows = self._select(
            f"SELECT rowid, * FROM {EVENTS_TABLE} ORDER BY rowid DESC LIMIT 1",  # noqa: S608
            [],
        )
        return _notification(rows[0]) if rows else None

    @property
    def notifier(self) -> CommitNotifier:
        """Told after every commit through this store."""
        return self.recorder.notifier

    def _select(self, statement: str, params: Sequence[Any]) -> list[Any]:
        try:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        except (OperationalError, sqlite3.OperationalError) as err:
            raise BackendUnavailableError(str(err)) from err

    def head(self) -> int:
        """Return the last position in the log."""
        rows = self._select(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}", [])  # noqa: S608
        return int(rows[0][0] or 0)

    def close(self) -> None:
        """Close every pooled connection."""
        self.datastore.close()


def _write_subject_keys(cursor: Any, write: PendingWrite) -> None:
    """Insert the write's new subject keys and delete its erased subjects' keys."""
    if write.subject_keys:
        cursor.executemany(
            f"INSERT INTO {SUBJECT_KEYS_TABLE} VALUES (?,?)",  # noqa: S608 - constant
            [(subject.hex, key) for subject, key in write.subject_keys.items()],
        )
    if write.erased_subjects:
        cursor.executemany(
            f"DELETE FROM {SUBJECT_KEYS_TABLE} WHERE subject_id = ?",  # noqa: S608 - constant
            [(subject.hex,) for subject in write.erased_subjects],
        )


def _text(stream_id: UUID | str) -> str:
    return stream_id.hex if isinstance(stream_id, UUID) else stream_id


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    """Split query parameters into lists SQLite accepts in one statement."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def _notification(row: Any) -> Notification:
    return Notification(
        id=row["rowid"],
        originator_id=UUID(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=row["state"],
    )
