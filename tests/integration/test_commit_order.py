"""Followers of the log never pass over an event whose writer commits after a later one's.

Two writers on two store instances (two replicas): T1 has been issued its position and holds
its transaction open; T2 appends meanwhile; a follower reads `read_page(after=last_seen)` and
moves `last_seen` to the highest position it saw. Appends serialise on the events table (the
EXCLUSIVE lock on PostgreSQL, the write lock on SQLite), so T2 waits for T1 and positions are
committed in the order they are issued. Without the table lock, T2 commits a later position
first, the follower moves past T1's and never reads it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg.rows import DictRow

from service.store.base import EventStoreBackend
from service.store.postgres import PostgresEventStore
from service.store.postgres_recorder import EVENTS_TABLE, RegistryPostgresRecorder
from tests.support.stores import BOTH_STORES

POSTGRES_ONLY = pytest.mark.parametrize("backend_factory", ["postgres"], indirect=True)

HOLD_SECONDS = 10.0
"""The longest T1 holds its transaction open; released at once in every test."""
WAIT_SECONDS = 5.0
"""The longest a step waits for another thread."""


def _event() -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic="test:Event", state=b"{}")


@dataclass
class Follower:
    """Tails the log as a subscription does: after the highest position it has seen."""

    store: EventStoreBackend
    last_seen: int = 0
    seen: list[int] = field(default_factory=list)

    def read(self) -> list[int]:
        """Read every page after `last_seen`; return the positions read."""
        read: list[int] = []
        while True:
            page = self.store.read_page(after=self.last_seen, limit=100)
            if not page.notifications:
                break
            read.extend(n.id for n in page.notifications)
            self.last_seen = max(self.last_seen, *(n.id for n in page.notifications))
        self.seen.extend(read)
        return read


@dataclass
class HeldAppend:
    """T1: an append of one event that stops before commit until `release` is set."""

    store: EventStoreBackend
    pool: ThreadPoolExecutor
    inside: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    result: Future[list[int]] | None = None

    def start(self) -> None:
        """Start the append and return once its position is issued and it waits to commit."""

        def hold() -> None:
            self.inside.set()
            if not self.release.wait(HOLD_SECONDS):
                msg = "the test never released the held append"
                raise TimeoutError(msg)

        self.result = self.pool.submit(
            self.store.append_events, [_event()], [[]], before_commit=hold
        )
        assert self.inside.wait(WAIT_SECONDS), "the held append did not reach its commit"

    def commit(self) -> list[int]:
        """Let it commit; return its positions."""
        self.release.set()
        assert self.result is not None
        return self.result.result(timeout=WAIT_SECONDS)


def _blocked_or_done(store: EventStoreBackend, append: Future[list[int]]) -> None:
    """Wait until `append` waits for a lock on the events table, or has finished.

    On PostgreSQL the lock wait is read from pg_locks. SQLite cannot say: the append is given
    a moment, in which it cannot finish while another transaction holds the write lock.
    """
    if not isinstance(store, PostgresEventStore):
        with pytest.raises(TimeoutError):
            append.result(timeout=0.3)
        return
    settings = store.settings
    table = f'"{settings.schema}".{EVENTS_TABLE}'
    with psycopg.connect(
        host=settings.host,
        port=settings.port,
        dbname=settings.dbname,
        user=settings.user,
        password=settings.password,
        autocommit=True,
    ) as conn:
        deadline = time.monotonic() + WAIT_SECONDS
        while not append.done():
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                [table],
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            assert time.monotonic() < deadline, "the append neither waited for the lock nor ended"
            time.sleep(0.01)


@BOTH_STORES
def test_a_follower_sees_every_event_once_when_writers_on_two_replicas_overlap(backend_factory):
    writer1, writer2, reader = backend_factory(), backend_factory(), backend_factory()
    follower = Follower(reader)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            t1 = HeldAppend(writer1, pool)
            t1.start()
            try:
                t2 = pool.submit(writer2.append_events, [_event()], [[]])
                # T2 waits for the lock T1 holds (without it, T2 would commit here).
                _blocked_or_done(writer2, t2)
                # The follower reads while T1 is held: nothing is committed yet.
                assert follower.read() == []
                assert not t2.done()
            finally:
                (first,) = t1.commit()
            (second,) = t2.result(timeout=WAIT_SECONDS)
        follower.read()
    finally:
        for store in (writer1, writer2, reader):
            store.close()
    # T2 was issued its position after T1 committed, and the follower saw both, once each.
    assert (first, second) == (1, 2)
    assert follower.seen == [1, 2]


@POSTGRES_ONLY
def test_without_the_table_lock_a_follower_passes_over_an_event_committed_late(
    backend_factory, monkeypatch
):
    # Appends still run in a transaction, but no longer take the EXCLUSIVE lock that orders
    # their commits.
    def no_lock(self: RegistryPostgresRecorder, cursor: psycopg.Cursor[DictRow]) -> None:
        cursor.execute("BEGIN")

    monkeypatch.setattr(RegistryPostgresRecorder, "begin_append", no_lock)
    writer1, writer2, reader = backend_factory(), backend_factory(), backend_factory()
    follower = Follower(reader)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            t1 = HeldAppend(writer1, pool)
            t1.start()
            try:
                # T2 is issued the next position and commits while T1 is still open.
                (second,) = writer2.append_events([_event()], [[]])
                # The follower reads T2's event and moves past T1's position.
                assert follower.read() == [second]
            finally:
                (first,) = t1.commit()
        follower.read()
        everything = [n.id for n in reader.read_page(after=0, limit=100).notifications]
    finally:
        for store in (writer1, writer2, reader):
            store.close()
    assert (first, second) == (1, 2)
    assert everything == [1, 2]
    # T1's event is in the log, but the follower never saw it.
    assert follower.seen == [2]
