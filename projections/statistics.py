"""The statistics projection: incidents, killed and injured by area and period.

Corrections are reflected exactly: the projection keeps the current facts of every incident,
and each event replaces the incident's old contribution to every bucket with its new one, so
the totals after an amendment or a casualty revision equal those of a log that had the
corrected facts from the start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from service.areas import AreaCatalog

NAME = "statistics"
EVENT_TYPES = ("ShootingReported", "CasualtiesRevised", "IncidentAmended")
PERIOD_KINDS = ("day", "week", "month", "year")
AREA_KINDS = ("municipality", "police_zone")


@dataclass(frozen=True)
class IncidentFacts:
    """What the statistics need to know about one incident."""

    municipality_code: str
    police_zone_code: str
    occurred_at: datetime
    killed: int
    injured: int


@dataclass(frozen=True)
class Bucket:
    """One statistics row: an area and a period."""

    area_kind: str
    area_code: str
    period_kind: str
    period: str


@dataclass
class Totals:
    """Counts in one bucket."""

    incidents: int = 0
    killed: int = 0
    injured: int = 0

    def add(self, incidents: int, killed: int, injured: int) -> None:
        """Add (or, with negative numbers, remove) a contribution."""
        self.incidents += incidents
        self.killed += killed
        self.injured += injured


def period_keys(moment: datetime, zone: ZoneInfo) -> dict[str, str]:
    """Return the day, ISO week, month and year of `moment` in the catalog's time zone."""
    local = moment.astimezone(zone)
    iso_year, week, _ = local.isocalendar()
    month = f"{local.year:04d}-{local.month:02d}"
    return {
        "day": f"{month}-{local.day:02d}",
        "week": f"{iso_year:04d}-W{week:02d}",
        "month": month,
        "year": f"{local.year:04d}",
    }


def buckets(facts: IncidentFacts, zone: ZoneInfo) -> list[Bucket]:
    """Every bucket one incident counts in."""
    periods = period_keys(facts.occurred_at, zone)
    return [
        Bucket(area_kind, area_code, period_kind, periods[period_kind])
        for area_kind, area_code in (
            ("municipality", facts.municipality_code),
            ("police_zone", facts.police_zone_code),
        )
        for period_kind in PERIOD_KINDS
    ]


class StatisticsBatch:
    """Folds a batch of events into incident facts and bucket deltas, in memory."""

    def __init__(self, catalog: AreaCatalog, known: dict[UUID, IncidentFacts]) -> None:
        self._zone = ZoneInfo(catalog.timezone)
        self.facts = dict(known)
        self.changed: set[UUID] = set()
        self.deltas: dict[Bucket, Totals] = {}

    def apply(self, incident_id: UUID, event_type: str, event: Any) -> None:
        """Fold one event of an incident."""
        before = self.facts.get(incident_id)
        after = _next_facts(before, event_type, event)
        if after is None or after == before:
            return
        if before is not None:
            self._count(before, -1)
        self._count(after, +1)
        self.facts[incident_id] = after
        self.changed.add(incident_id)

    def _count(self, facts: IncidentFacts, sign: int) -> None:
        for bucket in buckets(facts, self._zone):
            totals = self.deltas.setdefault(bucket, Totals())
            totals.add(sign, sign * facts.killed, sign * facts.injured)

    def nonzero_deltas(self) -> Iterable[tuple[Bucket, Totals]]:
        """Deltas that change something."""
        return (
            (bucket, totals)
            for bucket, totals in self.deltas.items()
            if totals.incidents or totals.killed or totals.injured
        )


def _next_facts(before: IncidentFacts | None, event_type: str, event: Any) -> IncidentFacts | None:
    if event_type == "ShootingReported":
        return IncidentFacts(
            municipality_code=event.municipality_code,
            police_zone_code=event.police_zone_code,
            occurred_at=event.occurred_at,
            killed=event.killed,
            injured=event.injured,
        )
    if before is None:
        return None
    if event_type == "CasualtiesRevised":
        return replace(before, killed=event.killed, injured=event.injured)
    if event_type == "IncidentAmended":
        corrections = event.corrections
        facts = before
        if "occurred_at" in corrections:
            facts = replace(facts, occurred_at=corrections["occurred_at"])
        if "municipality_code" in corrections:
            facts = replace(
                facts,
                municipality_code=corrections["municipality_code"],
                police_zone_code=event.police_zone_code,
            )
        return facts
    return before
