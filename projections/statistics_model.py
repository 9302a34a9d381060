"""The statistics read model: its tables, how a batch of events updates them, and its queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from projections.base import Projection, Recorded
from projections.statistics import EVENT_TYPES, NAME, Bucket, IncidentFacts, StatisticsBatch, Totals
from projections.store import ViewTransaction
from service.areas import AreaCatalog


@dataclass(frozen=True)
class StatisticsRow:
    """One area and period with its counts."""

    area_kind: str
    area_code: str
    period_kind: str
    period: str
    incidents: int
    killed: int
    injured: int


class StatisticsProjection(Projection):
    """Incidents, killed and injured by municipality and police zone, per day, week, month, year."""

    name: ClassVar[str] = NAME
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    tables: ClassVar[tuple[str, ...]] = ("proj_incident_facts", "proj_statistics")
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS proj_incident_facts ("
        "incident_id TEXT PRIMARY KEY, municipality_code TEXT NOT NULL, "
        "police_zone_code TEXT NOT NULL, occurred_at TEXT NOT NULL, "
        "killed BIGINT NOT NULL, injured BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS proj_statistics ("
        "area_kind TEXT NOT NULL, area_code TEXT NOT NULL, period_kind TEXT NOT NULL, "
        "period TEXT NOT NULL, incidents BIGINT NOT NULL, killed BIGINT NOT NULL, "
        "injured BIGINT NOT NULL, PRIMARY KEY (area_kind, period_kind, area_code, period))",
    )

    def __init__(self, catalog: AreaCatalog) -> None:
        self._catalog = catalog

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Fold the batch in memory, then write the changed facts and the bucket deltas."""
        # An incident reported in this batch starts here (ShootingReported is its first event):
        # only the others need their facts from the table.
        reported = {e.originator_id for e in events if e.event_type == "ShootingReported"}
        known = load_facts(tx, {e.originator_id for e in events} - reported)
        batch = StatisticsBatch(self._catalog, known)
        for recorded in events:
            # The stored payload has the few fields needed, without decoding the whole event.
            fields = recorded.payload() or vars(recorded.event)
            batch.apply_fields(recorded.originator_id, recorded.event_type, fields)
        write_facts(tx, {incident: batch.facts[incident] for incident in batch.changed})
        write_deltas(tx, batch.nonzero_deltas())


def load_facts(tx: ViewTransaction, incident_ids: Iterable[UUID]) -> dict[UUID, IncidentFacts]:
    """The current facts of the given incidents, where known."""
    ids = [str(i) for i in incident_ids]
    found: dict[UUID, IncidentFacts] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        statement = (
            "SELECT incident_id, municipality_code, police_zone_code, occurred_at, killed, "  # noqa: S608
            f"injured FROM proj_incident_facts WHERE incident_id IN ({marks})"
        )
        rows = tx.fetchall(statement, chunk)
        for row in rows:
            found[UUID(row[0])] = IncidentFacts(
                municipality_code=row[1],
                police_zone_code=row[2],
                occurred_at=datetime.fromisoformat(row[3]),
                killed=int(row[4]),
                injured=int(row[5]),
            )
    return found


def write_facts(tx: ViewTransaction, facts: dict[UUID, IncidentFacts]) -> None:
    """Insert or replace incident facts."""
    tx.executemany(
        "INSERT INTO proj_incident_facts VALUES (?,?,?,?,?,?) "
        "ON CONFLICT (incident_id) DO UPDATE SET "
        "municipality_code = excluded.municipality_code, "
        "police_zone_code = excluded.police_zone_code, "
        "occurred_at = excluded.occurred_at, "
        "killed = excluded.killed, injured = excluded.injured",
        [
            (
                str(incident_id),
                f.municipality_code,
                f.police_zone_code,
                f.occurred_at.isoformat(),
                f.killed,
                f.injured,
            )
            for incident_id, f in facts.items()
        ],
    )


def write_deltas(tx: ViewTransaction, deltas: Iterable[tuple[Bucket, Totals]]) -> None:
    """Add bucket deltas to the statistics rows."""
    tx.executemany(
        "INSERT INTO proj_statistics VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT (area_kind, period_kind, area_code, period) DO UPDATE SET "
        "incidents = proj_statistics.incidents + excluded.incidents, "
        "killed = proj_statistics.killed + excluded.killed, "
        "injured = proj_statistics.injured + excluded.injured",
        [
            (b.area_kind, b.area_code, b.period_kind, b.period, t.incidents, t.killed, t.injured)
            for b, t in deltas
        ],
    )


def query_statistics(
    tx: ViewTransaction,
    area_kind: str,
    area_codes: Sequence[str],
    period_kind: str,
    *,
    from_period: str = "",
    to_period: str = "",
) -> list[StatisticsRow]:
    """Rows of one area kind and period kind, optionally limited to areas and a range."""
    statement = (
        "SELECT area_kind, area_code, period_kind, period, incidents, killed, injured "
        "FROM proj_statistics WHERE area_kind = ? AND period_kind = ?"
    )
    params: list[Any] = [area_kind, period_kind]
    if area_codes:
        statement += f" AND area_code IN ({','.join('?' * len(area_codes))})"
        params.extend(area_codes)
    if from_period:
        statement += " AND period >= ?"
        params.append(from_period)
    if to_period:
        statement += " AND period <= ?"
        params.append(to_period)
    statement += " AND incidents > 0 ORDER BY area_code, period"
    return [
        StatisticsRow(
            area_kind=row[0],
            area_code=row[1],
            period_kind=row[2],
            period=row[3],
            incidents=int(row[4]),
            killed=int(row[5]),
            injured=int(row[6]),
        )
        for row in tx.fetchall(statement, params)
    ]
