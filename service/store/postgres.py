"""The PostgreSQL event store: the library's recorder, plus idempotency, tags and batch appends.

Appends take the library's EXCLUSIVE table lock, so log positions are committed in the order
they are issued and a follower can never pass over a position that is filled in later. Every
append also NOTIFYs the schema's channel with the new head; each process LISTENs on it, so
followers in every replica are woken within milliseconds of a commit made by any of them.
The tables, settings and recorder are in `service.store.postgres_recorder`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier

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
from service.store.postgres_recorder import (
    EVENTS_TABLE,
    REQUESTS_TABLE,
    SUBJECT_KEYS_TABLE,
    TAGS_TABLE,
    PostgresSettings,
    RegistryPostgresRecorder,
)

__all__ = ["PostgresEventStore", "PostgresSettings"]


class PostgresEventStore(EventStoreBackend):
    """Event store backend on one PostgreSQL database (schema)."""

    def __init__(self, settings: PostgresSettings, *, create_schema: bool = True) -> None:
        """Open the pool; create the tables unless `create_schema` is off (then check them)."""
        self.settings = settings
        self.datastore = PostgresDatastore(
            dbname=settings.dbname,
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password,
            schema=settings.schema,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            connect_timeout=settings.connect_timeout,
            lock_timeout=settings.lock_timeout,
            idle_in_transaction_session_timeout=settings.idle_in_transaction_timeout,
            pre_ping=True,
        )
        self.recorder = RegistryPostgresRecorder(self.datastore)
        self._notifier = CommitNotifier()
        self._table = self._name(EVENTS_TABLE)
        try:
            if create_schema:
                self.recorder.create_table()
            else:
                self._check_schema()
        except (PersistenceError, psycopg.Error, psycopg_pool.PoolTimeout) as err:
            self.datastore.close()
            msg = f"cannot open the PostgreSQL event store: {err}"
            raise BackendUnavailableError(msg) from err
        except BaseException:
            self.datastore.close()
            raise
        self._head_lock = threading.Lock()
        self._known_head = 0
        self._stop_listening = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="pg-listen", daemon=True)
        self._listener.start()

    def _check_schema(self) -> None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT array_agg(t) FILTER (WHERE to_regclass(format('%%I.%%I', %s::text, t)) "
                "IS NULL) AS missing FROM unnest(%s::text[]) AS t",
                [self.settings.schema, list(REGISTRY_TABLES)],
            ).fetchone()
        missing = (row["missing"] if row else None) or []
        if missing:
            where = f"{self.settings.host}:{self.settings.port}/{self.settings.dbname}"
            raise missing_schema_error(missing, f"{where} (schema {self.settings.schema})")
        self.datastore.register_type_adapters()

    def _name(self, table: str) -> Composable:
        return SQL("{0}.{1}").format(Identifier(self.settings.schema), Identifier(table))

    @contextlib.contextmanager
    def _session(self) -> Iterator[Cursor[DictRow]]:
        """A cursor on a pooled connection in autocommit mode: a single statement is its own
        transaction (no BEGIN and ROLLBACK round trips); errors become the store's errors."""
        try:
            with self.datastore.get_connection() as conn:
                yield conn.cursor()
        except (IntegrityError, psycopg.IntegrityError) as err:
            raise AppendConflictError(str(err)) from err
        except (
            OperationalError,
            InterfaceError,
            psycopg.OperationalError,
            psycopg.InterfaceError,
            psycopg_pool.PoolTimeout,
        ) as err:
            raise BackendUnavailableError(str(err)) from err

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Cursor[DictRow]]:
        """A read-only REPEATABLE READ transaction: its statements see one snapshot."""
        with self._session() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield cursor
            finally:
                cursor.execute("ROLLBACK")

    def append(self, writes: Sequence[PendingWrite]) -> list[int]:
        """Append all writes, their request records and tags in one locked transaction."""
        events = [event for write in writes for event in write.events]
        last_events = [write.events[-1] for write in writes]
        issued = self._append(
            events,
            [tags for write in writes for tags in write.tags],
            requests=SQL(
                "INSERT INTO {0} SELECT r.request_id, r.fingerprint, r.aggregate_id, r.version, "
                "ev.notification_id FROM unnest(%s::text[], %s::text[], %s::uuid[], "
                "%s::bigint[], %s::uuid[], %s::bigint[]) AS r(request_id, fingerprint, "
                "aggregate_id, version, last_id, last_version) JOIN ev "
                "ON ev.originator_id = r.last_id AND ev.originator_version = r.last_version"
            ).format(self._name(REQUESTS_TABLE)),
            request_params=[
                [w.request_id for w in writes],
                [w.fingerprint for w in writes],
                [w.aggregate_id for w in writes],
                [w.version for w in writes],
                [e.originator_id for e in last_events],
                [e.originator_version for e in last_events],
            ],
            subject_keys=[item for write in writes for item in write.subject_keys.items()],
            erased_subjects=[subject for write in writes for subject in write.erased_subjects],
        )
        return [issued[(e.originator_id, e.originator_version)] for e in last_events]

    def append_events(
        self,
        events: Sequence[StoredEvent],
        tags: Sequence[Sequence[str]],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> list[int]:
        """Append events and their tags in one locked transaction; return their positions."""
        if not events:
            return []
        issued = self._append(events, tags, before_commit=before_commit)
        return [issued[(e.originator_id, e.originator_version)] for e in events]

    def _append(
        self,
        events: Sequence[StoredEvent],
        tags: Sequence[Sequence[str]],
        *,
        requests: Composable | None = None,
        request_params: Sequence[Sequence[Any]] = (),
        before_commit: Callable[[], None] | None = None,
        subject_keys: Sequence[tuple[UUID, bytes]] = (),
        erased_subjects: Sequence[UUID] = (),
    ) -> dict[tuple[UUID | str, int], int]:
        """Insert events, their tags and (optionally) request records in one statement.

        The statement runs under the table lock, pipelined with it (one round trip for both),
        and NOTIFYs the channel with the new head, which other processes' listeners take
        without querying. Returns the position issued to each (stream id, version).
        """
        tag_rows = [
            (tag, event.originator_id, event.originator_version)
            for event, event_tags in zip(events, tags, strict=True)
            for tag in event_tags
        ]
        statement = SQL(
            "WITH ev AS (INSERT INTO {events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) "
            "RETURNING originator_id, originator_version, notification_id), "
            "tg AS (INSERT INTO {tags} SELECT t.tag, ev.notification_id "
            "FROM unnest(%s::text[], %s::uuid[], %s::bigint[]) AS t(tag, oid, version) "
            "JOIN ev ON ev.originator_id = t.oid AND ev.originator_version = t.version)"
            "{requests} "
            "SELECT ev.originator_id, ev.originator_version, ev.notification_id "
            "FROM ev, (SELECT pg_notify(%s, MAX(notification_id)::text) FROM ev) AS n"
        ).format(
            events=self._table,
            tags=self._name(TAGS_TABLE),
            requests=SQL(", rq AS ({0})").format(requests) if requests is not None else SQL(""),
        )
        params: list[Any] = [
            [e.originator_id for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
            [row[0] for row in tag_rows],
            [row[1] for row in tag_rows],
            [row[2] for row in tag_rows],
            *request_params,
            self.recorder.channel_name,
        ]
        with self._session() as cursor:
            # BEGIN, the lock, the statement and COMMIT: three round trips.
            self.recorder.begin_append(cursor)
            try:
                cursor.execute(statement, params)
                issued = {
                    (row["originator_id"], row["originator_version"]): row["notification_id"]
                    for row in cursor.fetchall()
                }
                if subject_keys:
                    cursor.executemany(
                        SQL("INSERT INTO {0} VALUES (%s, %s)").format(
                            self._name(SUBJECT_KEYS_TABLE)
                        ),
                        list(subject_keys),
                    )
                if erased_subjects:
                    cursor.execute(
                        SQL("DELETE FROM {0} WHERE subject_id = ANY(%s::uuid[])").format(
                            self._name(SUBJECT_KEYS_TABLE)
                        ),
                        [list(erased_subjects)],
                    )
                if before_commit is not None:
                    before_commit()
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        self._told_head(max(issued.values()))
        return issued

    def stream_versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Look up the streams' last versions in one query."""
        if not stream_ids:
            return {}
        with self._session() as cursor:
            cursor.execute(
                SQL(
                    "SELECT originator_id, MAX(originator_version) AS version FROM {0} "
                    "WHERE originator_id = ANY(%s) GROUP BY originator_id"
                ).format(self._table),
                [list(stream_ids)],
            )
            return {row["originator_id"]: row["version"] for row in cursor.fetchall()}

    def read_streams(self, stream_ids: Sequence[UUID]) -> dict[UUID, list[Notification]]:
        """Read whole streams in one query."""
        found: dict[UUID, list[Notification]] = {}
        if not stream_ids:
            return found
        with self._session() as cursor:
            cursor.execute(
                SQL(
                    "SELECT * FROM {0} WHERE originator_id = ANY(%s) "
                    "ORDER BY originator_id, originator_version"
                ).format(self._table),
                [list(stream_ids)],
            )
            for row in cursor.fetchall():
                found.setdefault(row["originator_id"], []).append(_notification(row))
        return found

    def read_tags(self, after: int, upto: int) -> dict[int, list[str]]:
        """Read the tags of a range of positions."""
        with self._session() as cursor:
            cursor.execute(
                SQL(
                    "SELECT position, tag FROM {0} WHERE position > %s AND position <= %s "
                    "ORDER BY position, tag"
                ).format(self._name(TAGS_TABLE)),
                [after, upto],
            )
            rows = cursor.fetchall()
        found: dict[int, list[str]] = {}
        for row in rows:
            found.setdefault(row["position"], []).append(row["tag"])
        return found

    def find_requests(self, request_ids: Sequence[str]) -> dict[str, IdempotencyRecord]:
        """Look up accepted request ids in one query."""
        if not request_ids:
            return {}
        with self._session() as cursor:
            cursor.execute(
                SQL("SELECT * FROM {0} WHERE request_id = ANY(%s)").format(
                    self._name(REQUESTS_TABLE)
                ),
                [list(request_ids)],
            )
            rows = cursor.fetchall()
        return {
            row["request_id"]: IdempotencyRecord(
                request_id=row["request_id"],
                fingerprint=row["fingerprint"],
                aggregate_id=row["aggregate_id"],
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
        statement = SQL("SELECT * FROM {0} WHERE originator_id = %s").format(self._table)
        params: list[Any] = [aggregate_id]
        if from_version is not None:
            statement += SQL(
                " AND originator_version <= %s" if descending else " AND originator_version >= %s"
            )
            params.append(from_version)
        statement += SQL(
            " ORDER BY originator_version DESC" if descending else " ORDER BY originator_version"
        )
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)
        with self._session() as cursor:
            cursor.execute(statement, params)
            return [_notification(row) for row in cursor.fetchall()]

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
        """Read matching events and the head in one snapshot (REPEATABLE READ)."""
        with self._snapshot() as cursor:
            cursor.execute(SQL("SELECT MAX(notification_id) AS head FROM {0}").format(self._table))
            row = cursor.fetchone()
            head = (row["head"] if row else None) or 0
            upper = head if before is None else min(head, before - 1)
            statement = SQL(
                "SELECT * FROM {0} WHERE notification_id > %s AND notification_id <= %s"
            ).format(self._table)
            params: list[Any] = [after, upper]
            if topics:
                statement += SQL(" AND topic = ANY(%s)")
                params.append(list(topics))
            if tags:
                statement += SQL(
                    " AND notification_id IN (SELECT position FROM {0} "
                    "WHERE tag = ANY(%s) AND position > %s AND position <= %s)"
                ).format(self._name(TAGS_TABLE))
                params.extend([list(tags), after, upper])
            statement += SQL(
                " ORDER BY notification_id DESC LIMIT %s"
                if descending
                else " ORDER BY notification_id LIMIT %s"
            )
            params.append(limit)
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        return LogPage([_notification(r) for r in rows], head)

    def read_subject_keys(self, subject_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """Look up the subjects' stored keys."""
        if not subject_ids:
            return {}
        with self._session() as cursor:
            cursor.execute(
                SQL("SELECT subject_id, key FROM {0} WHERE subject_id = ANY(%s::uuid[])").format(
                    self._name(SUBJECT_KEYS_TABLE)
                ),
                [sorted(set(subject_ids))],
            )
            return {row["subject_id"]: bytes(row["key"]) for row in cursor.fetchall()}

    def head(self) -> int:
        """Return the last position in the log."""
        with self._session() as cursor:
            cursor.execute(SQL("SELECT MAX(notification_id) AS head FROM {0}").format(self._table))
            row = cursor.fetchone()
        return (row["head"] if row else None) or 0

    def last_notification(self) -> Notification | None:
        """Return the stored event at the head."""
        with self._session() as cursor:
            cursor.execute(
                SQL("SELECT * FROM {0} ORDER BY notification_id DESC LIMIT 1").format(self._table)
            )
            row = cursor.fetchone()
        return _notification(row) if row else None

    @property
    def notifier(self) -> CommitNotifier:
        """Told after every commit through this store, and on NOTIFY from other processes."""
        return self._notifier

    def _told_head(self, head: int) -> None:
        """Tell this process's followers about `head` unless they already know of it."""
        with self._head_lock:
            if head <= self._known_head:
                return
            self._known_head = head
        self._notifier.notify(head)

    def _listen(self) -> None:
        """Relay NOTIFY from every process's appends to this process's followers."""
        channel = Identifier(self.recorder.channel_name)
        while not self._stop_listening.is_set():
            try:
                with self.datastore.get_connection() as conn:
                    conn.execute(SQL("LISTEN {0}").format(channel))
                    conn.commit()
                    while not self._stop_listening.is_set():
                        heads = [
                            int(n.payload) if n.payload.isdigit() else None
                            for n in conn.notifies(timeout=0.1, stop_after=1)
                        ]
                        if heads:
                            known = [h for h in heads if h is not None]
                            self._told_head(max(known) if len(known) == len(heads) else self.head())
            except (PersistenceError, psycopg.Error, BackendUnavailableError):
                # The database went away: followers still poll; listen again shortly.
                self._stop_listening.wait(1.0)

    def close(self) -> None:
        """Stop listening and close the pool."""
        self._stop_listening.set()
        self._listener.join(timeout=5)
        self.datastore.close()


def _notification(row: DictRow) -> Notification:
    return Notification(
        id=row["notification_id"],
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
