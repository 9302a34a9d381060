"""Copying incident and asset-case histories inside SQLite for benchmarks/logbuild.py.

`clone_copies` repeats the domain-built writes (with the positions of their last events)
copy after copy under fresh aggregate ids, in segments of whole writes cloned by
INSERT ... SELECT, with the rows `SQLiteEventStore.append` would write: the events under the
fresh id and the same versions, topics and states, an accepted-request row per write (unique
request id and fingerprint, the new aggregate id, the version and position of its last
event) and the same tags at the new positions. An asset case's id derives from its judicial
reference, so each copy of a case gets a fresh reference (replaced in the JSON state of its
AssetCaseOpened event) and the id derived from it.

Police commands are not copied (see benchmarks/logbuild.py): after each segment a
`WriteMaker` (the builder of the log) makes a new command write through the domain, so that
command writes stay about `COMMAND_WRITE_SHARE` of all writes, as in the domain-built part.
"""

from __future__ import annotations

import bisect
import math
import random
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from logbuild_cases import (
    COMMAND_WRITE_SHARE,
    ROOM_FOR_ANY_WRITE,
    reference_json,
    reference_of,
    renamed_reference,
)

from service.domain.asset_case import case_id
from service.store.base import PendingWrite
from service.store.sqlite import EVENTS_TABLE, REQUESTS_TABLE, TAGS_TABLE

if TYPE_CHECKING:
    from logbuild import BuildStats

CLONE_CACHE_KB = 256 * 1024  # SQLite page cache while cloning


class WriteMaker(Protocol):
    """Makes new writes through the domain (benchmarks/logbuild.py's LogBuilder)."""

    def command_write(self) -> PendingWrite:
        """Unify or end a police command."""
        ...

    def report_shooting(self) -> PendingWrite:
        """Report a new shooting: a write of one event."""
        ...


@dataclass
class _Template:
    """The replayed events, numbered 1.. (`seq`) in log order, and where their writes end."""

    rows: list[tuple[int, int, int]]
    """seq, position in the log, 1 when the event is its write's last."""
    ends: list[int]
    """The seq of each write's last event."""
    kinds: list[tuple[str, int]]
    """Each event's type and state size, by seq - 1."""
    aggregates: list[str]
    references: dict[str, str]
    """The case reference of each asset case, by aggregate id (hex)."""

    @classmethod
    def of(cls, writes: list[tuple[int, PendingWrite]]) -> _Template:
        """Number the events of `writes` (each with the position of its last event)."""
        template = cls([], [], [], sorted({w.aggregate_id.hex for _, w in writes}), {})
        for position, write in writes:
            first = position - len(write.events) + 1
            for offset, stored in enumerate(write.events):
                seq = len(template.rows) + 1
                template.rows.append((seq, first + offset, int(offset == len(write.events) - 1)))
                template.kinds.append((stored.topic.rpartition(".")[2], len(stored.state)))
                if stored.topic.endswith(".AssetCaseOpened"):
                    template.references[write.aggregate_id.hex] = reference_of(stored)
            template.ends.append(len(template.rows))
        return template


def clone_copies(
    path: Path,
    template: list[tuple[int, PendingWrite]],
    count: int,
    stats: BuildStats,
    maker: WriteMaker,
    *,
    commands: bool = True,
    progress: bool = False,
) -> None:
    """Append `count` events to the log at `path`: the `template` writes (with the positions
    of their last events; each write's events of its own aggregate), repeated copy after copy
    under fresh ids, one transaction per copy, with a police command write from `maker` after
    each segment when `commands`; add them to `stats`. A last event that no whole write fits
    is a new shooting from `maker`.
    """
    if not template:
        msg = "the domain-built part of the log has no incident to replay"
        raise ValueError(msg)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # Written once by this process alone: a rollback journal (not the WAL, which writes
        # every page twice) and a large page cache for the index inserts; WAL again after.
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute(f"PRAGMA cache_size=-{CLONE_CACHE_KB}")
        cloner = _Cloner(connection, _Template.of(template), stats, maker, count)
        cloner.run(count, commands=commands, progress=progress)
        connection.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()
    stats.recount()


class _Cloner:
    """Clones segments of the template and inserts new writes between them."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        numbered: _Template,
        stats: BuildStats,
        maker: WriteMaker,
        seed: int,
    ) -> None:
        self._connection = connection
        self._numbered = numbered
        self._stats = stats
        self._maker = maker
        self._rng = random.Random(seed)
        self._run = uuid.uuid4().hex[:8]
        self._state_bytes = stats.mean_state_bytes * stats.events
        connection.execute(
            "CREATE TEMP TABLE template (seq INTEGER PRIMARY KEY, pos INTEGER, last INTEGER)"
        )
        connection.execute(
            "CREATE TEMP TABLE fresh (old TEXT PRIMARY KEY, new TEXT, old_ref TEXT, new_ref TEXT)"
        )
        connection.executemany("INSERT INTO template VALUES (?, ?, ?)", numbered.rows)

    def run(self, count: int, *, commands: bool, progress: bool) -> None:
        """Append `count` events, one transaction per copy of the template."""
        ends = self._numbered.ends
        done = copy = 0
        written = len(ends)  # writes of the current copy cloned so far
        gap = self._gap()  # template writes before the next police command
        next_report = 250_000
        while done < count:
            if written == len(ends):
                if copy:
                    self._connection.execute("COMMIT")
                copy += 1
                self._connection.execute("BEGIN IMMEDIATE")
                _fresh_ids(self._connection, self._numbered, copy)
                written = 0
            room = count - done
            if gap == 0 and commands and room >= ROOM_FOR_ANY_WRITE:
                done += self._append(self._maker.command_write())
                gap = self._gap()
                continue
            lo = ends[written - 1] if written else 0
            upto = min(written + max(gap, 1), len(ends))
            upto = min(upto, bisect.bisect_right(ends, lo + room, lo=written))
            if upto == written:  # the next write does not fit: end with a shooting
                done += self._append(self._maker.report_shooting())
                continue
            hi = ends[upto - 1]
            _clone_segment(self._connection, lo, hi, f"bench-{self._run}-r{copy}-")
            self._count(self._numbered.kinds[lo:hi], upto - written)
            gap, written, done = max(gap - (upto - written), 0), upto, done + hi - lo
            if progress and self._stats.events >= next_report:
                print(f"  built {self._stats.events:,} events", flush=True)
                next_report += 250_000
        if copy:
            self._connection.execute("COMMIT")
        self._stats.mean_state_bytes = self._state_bytes / self._stats.events

    def _gap(self) -> int:
        """Template writes until the next police command: geometric, as in the domain part."""
        drawn = math.log(1.0 - self._rng.random()) / math.log(1.0 - COMMAND_WRITE_SHARE)
        return int(drawn)

    def _append(self, write: PendingWrite) -> int:
        """Insert the rows `SQLiteEventStore.append` writes for `write`, count its events
        and return how many there are."""
        positions: list[int] = []
        for stored in write.events:
            stream = stored.originator_id
            cursor = self._connection.execute(
                f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?)",
                (
                    stream.hex if isinstance(stream, UUID) else stream,
                    stored.originator_version,
                    stored.topic,
                    stored.state,
                ),
            )
            assert cursor.lastrowid is not None
            positions.append(cursor.lastrowid)
        self._connection.execute(
            f"INSERT INTO {REQUESTS_TABLE} VALUES (?, ?, ?, ?, ?)",
            (
                write.request_id,
                write.fingerprint,
                write.aggregate_id.hex,
                write.version,
                positions[-1],
            ),
        )
        self._connection.executemany(
            f"INSERT INTO {TAGS_TABLE} VALUES (?, ?)",
            [(tag, p) for p, tags in zip(positions, write.tags, strict=True) for tag in tags],
        )
        self._count([(e.topic.rpartition(".")[2], len(e.state)) for e in write.events], 1)
        return len(write.events)

    def _count(self, kinds: list[tuple[str, int]], writes: int) -> None:
        """Add events (type and state size) of `writes` writes to the stats."""
        types = self._stats.event_types
        for name, size in kinds:
            types[name] = types.get(name, 0) + 1
            self._state_bytes += size
        self._stats.events += len(kinds)
        self._stats.writes += writes


def _fresh_ids(connection: sqlite3.Connection, numbered: _Template, copy: int) -> None:
    """Give every replayed aggregate a fresh id for the `copy`-th copy; an asset case's id
    derives from its fresh reference, which replaces the old one in its opening event."""
    rows: list[tuple[str, str, str | None, str | None]] = []
    for old in numbered.aggregates:
        reference = numbered.references.get(old)
        if reference is None:
            rows.append((old, uuid.uuid4().hex, None, None))
        else:
            new = renamed_reference(reference, copy)
            rows.append((old, case_id(new).hex, reference_json(reference), reference_json(new)))
    connection.execute("DELETE FROM fresh")
    connection.executemany("INSERT INTO fresh VALUES (?, ?, ?, ?)", rows)


def _clone_segment(connection: sqlite3.Connection, lo: int, hi: int, prefix: str) -> None:
    """Copy the template events lo < seq <= hi (whole writes) under the fresh ids, with a
    request row per write (at its last event) and the events' tags."""
    base = connection.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {EVENTS_TABLE}")
    head = int(base.fetchone()[0]) - lo  # the copy of event seq lands at head + seq
    picked = (
        f"FROM template t JOIN {EVENTS_TABLE} e ON e.rowid = t.pos "
        "JOIN fresh f ON f.old = e.originator_id WHERE t.seq > :lo AND t.seq <= :hi"
    )
    values = {"lo": lo, "hi": hi, "head": head, "prefix": prefix}
    connection.execute(
        f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
        "SELECT f.new, e.originator_version, e.topic, CASE WHEN f.old_ref IS NULL THEN e.state "
        "ELSE CAST(replace(CAST(e.state AS TEXT), f.old_ref, f.new_ref) AS BLOB) END "
        f"{picked} ORDER BY t.seq",
        values,
    )
    last = int(connection.execute(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}").fetchone()[0])
    if last != head + hi:
        msg = f"cloned events landed at {head + lo + 1}..{last}, not ..{head + hi}"
        raise RuntimeError(msg)
    connection.execute(
        f"INSERT INTO {REQUESTS_TABLE} "
        "SELECT :prefix || t.seq, 'fp-' || :prefix || t.seq, f.new, e.originator_version, "
        f":head + t.seq {picked} AND t.last = 1",
        values,
    )
    connection.execute(
        f"INSERT INTO {TAGS_TABLE} SELECT g.tag, :head + t.seq FROM template t "
        f"JOIN {TAGS_TABLE} g ON g.position = t.pos WHERE t.seq > :lo AND t.seq <= :hi",
        values,
    )
