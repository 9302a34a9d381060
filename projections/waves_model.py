"""The waves read model: incident facts and waves, the batch that records new waves, and queries.

A wave is recorded in the log (WaveDetected) before the transaction of the batch that found it
commits, through the registry's writer, under a request id derived from the wave. Detection is
deterministic given the log, so a batch applied again — after a crash between recording and
committing, or in a rebuild — finds the same waves, and recording them again is an idempotent
replay that returns the original position: each wave is in the log exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from projections.base import Projection, Recorded
from projections.store import ViewTransaction
from projections.waves import EVENT_TYPES, NAME, Detection, Fact, WaveBook, micros, moment
from service.app.commands import RecordWave
from service.app.results import WriteResult
from service.app.waves import Waves
from service.domain.errors import ConcurrentModificationError, StoreUnavailableError
from service.domain.wave import WaveRule
from service.store.base import BackendUnavailableError

RECORD_TIMEOUT_SECONDS = 30.0
"""How long a batch waits for the writer to record a wave before it fails (and is retried)."""

Recorder = Callable[[Sequence[RecordWave]], list[WriteResult]]
"""Records detected waves (in order) and returns where each one is in the log."""

_INCIDENT_COLUMNS = "incident_id, area_code, occurred_at, municipality_code, wave_id"
_WAVE_COLUMNS = (
    "wave_id, area_kind, area_code, start_at, end_at, members, detected_ids, "
    "min_shootings, window_hours, trigger_position, position"
)


class WaveRuleChangedError(Exception):
    """Raised when the waves model was built under another rule: it must be rebuilt."""


@dataclass(frozen=True)
class WaveRow:
    """One wave of the read model."""

    wave_id: UUID
    area_kind: str
    area_code: str
    first_occurred_at: datetime
    last_occurred_at: datetime
    incident_ids: tuple[UUID, ...]
    detected_incident_ids: tuple[UUID, ...]
    min_shootings: int
    window_hours: int
    trigger_position: int
    detected_position: int


def blocking_recorder(waves: Waves, timeout: float = RECORD_TIMEOUT_SECONDS) -> Recorder:
    """Record waves from a projection's thread, all of a batch at once, within `timeout` seconds.

    The writer hands its results back through the caller's event loop. The runner's loop is not
    used: while it stops it waits for this very thread, so the recordings run on a loop of
    their own here, queued together so that the writer commits them in one transaction (in
    the order given). A store that cannot be reached, or a timeout, fails the batch as
    BackendUnavailableError, which the runner retries.
    """

    async def record_within(commands: Sequence[RecordWave]) -> list[WriteResult]:
        async with asyncio.timeout(timeout):
            return list(await asyncio.gather(*(waves.record(c) for c in commands)))

    def record(commands: Sequence[RecordWave]) -> list[WriteResult]:
        if not commands:
            return []
        try:
            return asyncio.run(record_within(commands))
        except (StoreUnavailableError, ConcurrentModificationError, TimeoutError) as err:
            msg = f"could not record a detected wave: {type(err).__name__}: {err}"
            raise BackendUnavailableError(msg) from err

    return record


class WavesProjection(Projection):
    """Violence waves: at least N shootings within T hours in one area, recorded in the log."""

    name: ClassVar[str] = NAME
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    tables: ClassVar[tuple[str, ...]] = ("proj_wave_rule", "proj_wave_incidents", "proj_waves")
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS proj_wave_rule (rule TEXT PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS proj_wave_incidents ("
        "incident_id TEXT PRIMARY KEY, area_code TEXT NOT NULL, occurred_at BIGINT NOT NULL, "
        "municipality_code TEXT NOT NULL, wave_id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS proj_wave_incidents_by_time "
        "ON proj_wave_incidents (area_code, occurred_at)",
        "CREATE INDEX IF NOT EXISTS proj_wave_incidents_by_wave ON proj_wave_incidents (wave_id)",
        "CREATE TABLE IF NOT EXISTS proj_waves ("
        "wave_id TEXT PRIMARY KEY, area_kind TEXT NOT NULL, area_code TEXT NOT NULL, "
        "start_at BIGINT NOT NULL, end_at BIGINT NOT NULL, members BIGINT NOT NULL, "
        "detected_ids TEXT NOT NULL, min_shootings BIGINT NOT NULL, "
        "window_hours BIGINT NOT NULL, trigger_position BIGINT NOT NULL, "
        "position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS proj_waves_by_time ON proj_waves (area_code, start_at)",
    )

    def __init__(self, rule: WaveRule | None, record: Recorder) -> None:
        self._rule = rule
        self._record = record

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Detect waves event by event, record the new ones, then write the changed rows."""
        self._check_rule(tx)
        if self._rule is None:
            return
        book = WaveBook(self._rule, _Rows(tx))
        reported = {e.originator_id for e in events if e.event_type == "ShootingReported"}
        book.preload({e.originator_id for e in events} - reported, new=reported)
        detections: list[Detection] = []
        for recorded in events:
            # The stored payload has the few fields needed, without decoding the whole event.
            fields = recorded.payload() or vars(recorded.event)
            detections.extend(
                book.apply(
                    recorded.originator_id,
                    recorded.event_type,
                    fields,
                    recorded.position,
                    recorded.originator_version,
                )
            )
        # Recorded before the batch commits: if the commit never happens, the batch is applied
        # again, finds the same waves and gets the same results back.
        results = self._record([self._command(d) for d in detections])
        positions = {d.wave_id: r.position for d, r in zip(detections, results, strict=True)}
        _write_incidents(tx, book)
        _insert_waves(tx, self._rule, detections, positions)
        _update_spans(tx, book)

    def _check_rule(self, tx: ViewTransaction) -> None:
        """Refuse to mix waves of two rules in one model (changing N or T means a rebuild)."""
        rule = self._rule.key() if self._rule is not None else "off"
        row = tx.fetchone("SELECT rule FROM proj_wave_rule")
        if row is None:
            tx.execute("INSERT INTO proj_wave_rule VALUES (?)", (rule,))
        elif row[0] != rule:
            msg = (
                f"the waves model was built for {row[0]!r} but the rule is now {rule!r}: "
                "rebuild the waves projection to detect waves under the new rule"
            )
            raise WaveRuleChangedError(msg)

    def _command(self, detection: Detection) -> RecordWave:
        assert self._rule is not None
        return RecordWave(
            area_kind=self._rule.area_kind,
            area_code=detection.area_code,
            incident_ids=detection.incident_ids,
            municipality_codes=detection.municipality_codes,
            first_occurred_at=moment(detection.first_at),
            last_occurred_at=moment(detection.last_at),
            min_shootings=self._rule.min_shootings,
            window_hours=self._rule.window_hours,
            trigger_incident_id=detection.trigger_incident_id,
            trigger_version=detection.trigger_version,
            trigger_position=detection.trigger_position,
        )


class _Rows:
    """The book's source: the facts and waves committed before this batch."""

    def __init__(self, tx: ViewTransaction) -> None:
        self._tx = tx

    def incidents(self, incident_ids: Iterable[UUID]) -> dict[UUID, Fact]:
        ids = [str(i) for i in incident_ids]
        found: dict[UUID, Fact] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            statement = (
                f"SELECT {_INCIDENT_COLUMNS} FROM proj_wave_incidents "  # noqa: S608
                f"WHERE incident_id IN ({marks})"
            )
            found.update(_facts(self._tx.fetchall(statement, chunk)))
        return found

    def area(self, area: str, low: int, high: int) -> tuple[dict[UUID, Fact], set[UUID]]:
        facts = _facts(
            self._tx.fetchall(
                f"SELECT {_INCIDENT_COLUMNS} FROM proj_wave_incidents "  # noqa: S608
                "WHERE area_code = ? AND occurred_at BETWEEN ? AND ?",
                (area, low, high),
            )
        )
        waves = self._tx.fetchall(
            "SELECT wave_id FROM proj_waves "
            "WHERE area_code = ? AND start_at <= ? AND end_at >= ? AND members > 0",
            (area, high, low),
        )
        return facts, {UUID(row[0]) for row in waves}

    def members(self, wave: UUID) -> dict[UUID, Fact]:
        return _facts(
            self._tx.fetchall(
                f"SELECT {_INCIDENT_COLUMNS} FROM proj_wave_incidents WHERE wave_id = ?",  # noqa: S608
                (str(wave),),
            )
        )


def _facts(rows: Iterable[tuple[Any, ...]]) -> dict[UUID, Fact]:
    return {
        UUID(row[0]): Fact(
            area=row[1],
            at=int(row[2]),
            municipality=row[3],
            wave=UUID(row[4]) if row[4] else None,
        )
        for row in rows
    }


def _write_incidents(tx: ViewTransaction, book: WaveBook) -> None:
    tx.executemany(
        "INSERT INTO proj_wave_incidents VALUES (?,?,?,?,?) "
        "ON CONFLICT (incident_id) DO UPDATE SET area_code = excluded.area_code, "
        "occurred_at = excluded.occurred_at, municipality_code = excluded.municipality_code, "
        "wave_id = excluded.wave_id",
        [
            (str(i), f.area, f.at, f.municipality, str(f.wave) if f.wave else "")
            for i, f in ((i, book.facts[i]) for i in sorted(book.changed_incidents, key=str))
        ],
    )


def _insert_waves(
    tx: ViewTransaction,
    rule: WaveRule,
    detections: Sequence[Detection],
    positions: dict[UUID, int],
) -> None:
    tx.executemany(
        f"INSERT INTO proj_waves ({_WAVE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
        [
            (
                str(d.wave_id),
                rule.area_kind,
                d.area_code,
                d.first_at,
                d.last_at,
                len(d.incident_ids),
                ",".join(str(i) for i in d.incident_ids),
                rule.min_shootings,
                rule.window_hours,
                d.trigger_position,
                positions[d.wave_id],
            )
            for d in detections
        ],
    )


def _update_spans(tx: ViewTransaction, book: WaveBook) -> None:
    """Store the current span and size of every wave that gained or lost members."""
    rows = []
    for wave in sorted(book.changed_waves, key=str):
        span = book.span(wave)
        members = len(book.waves[wave].members)
        if span is None:
            tx.execute("UPDATE proj_waves SET members = 0 WHERE wave_id = ?", (str(wave),))
        else:
            rows.append((span[0], span[1], members, str(wave)))
    tx.executemany(
        "UPDATE proj_waves SET start_at = ?, end_at = ?, members = ? WHERE wave_id = ?", rows
    )


def query_waves(
    tx: ViewTransaction,
    *,
    municipalities: Sequence[str] = (),
    police_zones: Sequence[str] = (),
    area_kind: str = "",
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    after: tuple[int, str] | None = None,
    limit: int = 50,
) -> list[WaveRow]:
    """Waves in the given areas (any, when none are given) whose span meets [from, to].

    `after` is the (start, wave id) of the last wave of the previous page.
    """
    statement = f"SELECT {_WAVE_COLUMNS} FROM proj_waves WHERE 1 = 1"  # noqa: S608
    params: list[Any] = []
    areas = []
    for kind, codes in (("municipality", municipalities), ("police_zone", police_zones)):
        if codes:
            marks = ",".join("?" * len(codes))
            areas.append(f"(area_kind = ? AND area_code IN ({marks}))")
            params.extend([kind, *codes])
    if areas:
        statement += f" AND ({' OR '.join(areas)})"
    if area_kind:
        statement += " AND area_kind = ?"
        params.append(area_kind)
    if from_time is not None:
        statement += " AND end_at >= ?"
        params.append(micros(from_time))
    if to_time is not None:
        statement += " AND start_at <= ?"
        params.append(micros(to_time))
    if after is not None:
        statement += " AND (start_at > ? OR (start_at = ? AND wave_id > ?))"
        params.extend([after[0], after[0], after[1]])
    statement += " ORDER BY start_at, wave_id LIMIT ?"
    params.append(limit)
    waves = tx.fetchall(statement, params)
    members = _members(tx, [row[0] for row in waves])
    return [
        WaveRow(
            wave_id=UUID(row[0]),
            area_kind=row[1],
            area_code=row[2],
            first_occurred_at=moment(int(row[3])),
            last_occurred_at=moment(int(row[4])),
            incident_ids=tuple(members.get(row[0], ())),
            detected_incident_ids=tuple(UUID(i) for i in row[6].split(",") if i),
            min_shootings=int(row[7]),
            window_hours=int(row[8]),
            trigger_position=int(row[9]),
            detected_position=int(row[10]),
        )
        for row in waves
    ]


def _members(tx: ViewTransaction, wave_ids: Sequence[str]) -> dict[str, list[UUID]]:
    """The current members of waves, in the order they occurred."""
    found: dict[str, list[UUID]] = {}
    if not wave_ids:
        return found
    marks = ",".join("?" * len(wave_ids))
    rows = tx.fetchall(
        "SELECT wave_id, incident_id FROM proj_wave_incidents "  # noqa: S608
        f"WHERE wave_id IN ({marks}) ORDER BY occurred_at, incident_id",
        wave_ids,
    )
    for wave, incident in rows:
        found.setdefault(wave, []).append(UUID(incident))
    return found
