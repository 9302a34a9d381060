"""The statistics projection: incidents, killed and injured by area and period.

Corrections are reflected exactly: the projection keeps the current facts of every incident,
and each event replaces the incident's old contribution to every bucket with its new one, so
the totals after an amendment or a casualty revision equal those of a log that had the
corrected facts from the start.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from service.areas import AreaCatalog
from service.store.transcoding import stored_time

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


class Bucket(NamedTuple):
    """One statistics row: an area and a period (a tuple, so that folding hashes fast)."""

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


def period_keys(moment: datetime, zone: ZoneInfo) -> dict[str, str]:
    """Return the day, ISO week, month and year of `moment` in the catalog's time zone."""
    return dict(_date_periods(moment.astimezone(zone).date()))


@functools.lru_cache(maxsize=4096)
def _date_periods(day: date) -> tuple[tuple[str, str], ...]:
    iso_year, week, _ = day.isocalendar()
    month = f"{day.year:04d}-{day.month:02d}"
    return (
        ("day", f"{month}-{day.day:02d}"),
        ("week", f"{iso_year:04d}-W{week:02d}"),
        ("month", month),
        ("year", f"{day.year:04d}"),
    )


def buckets(facts: IncidentFacts, zone: ZoneInfo) -> list[Bucket]:
    """Every bucket one incident counts in."""
    return [Bucket(*key) for key in _bucket_keys(facts, zone)]


def _bucket_keys(facts: IncidentFacts, zone: ZoneInfo) -> list[tuple[str, str, str, str]]:
    """The buckets of `buckets` as plain tuples (equal to them), for the fold's hot loop."""
    periods = _date_periods(facts.occurred_at.astimezone(zone).date())
    return [
        (area_kind, area_code, period_kind, period)
        for area_kind, area_code in (
            ("municipality", facts.municipality_code),
            ("police_zone", facts.police_zone_code),
        )
        for period_kind, period in periods
    ]


class StatisticsBatch:
    """Folds a batch of events into incident facts and bucket deltas, in memory."""

    def __init__(self, catalog: AreaCatalog, known: dict[UUID, IncidentFacts]) -> None:
        self._zone = ZoneInfo(catalog.timezone)
        self.facts = dict(known)
        self.changed: set[UUID] = set()
        # (area kind, area code, period kind, period) -> [incidents, killed, injured]
        self._deltas: dict[tuple[str, str, str, str], list[int]] = {}

    def apply(self, incident_id: UUID, event_type: str, event: Any) -> None:
        """Fold one domain event of an incident."""
        self.apply_fields(incident_id, event_type, vars(event))

    def apply_fields(self, incident_id: UUID, event_type: str, fields: Mapping[str, Any]) -> None:
        """Fold one event of an incident, given its attributes (decoded, or a stored payload)."""
        before = self.facts.get(incident_id)
        after = _next_facts(before, event_type, fields)
        if after is None or after == before:
            return
        if before is not None:
            self._count(before, -1)
        self._count(after, +1)
        self.facts[incident_id] = after
        self.changed.add(incident_id)

    def _count(self, facts: IncidentFacts, sign: int) -> None:
        # The hot loop of a rebuild: plain tuples and lists, no objects per bucket.
        killed, injured = sign * facts.killed, sign * facts.injured
        deltas = self._deltas
        for key in _bucket_keys(facts, self._zone):
            totals = deltas.get(key)
            if totals is None:
                deltas[key] = [sign, killed, injured]
            else:
                totals[0] += sign
                totals[1] += killed
                totals[2] += injured

    @property
    def touched(self) -> int:
        """How many buckets the batch touched, including those whose net change is zero."""
        return len(self._deltas)

    def nonzero_deltas(self) -> Iterable[tuple[Bucket, Totals]]:
        """Deltas that change something."""
        return (
            (Bucket(*key), Totals(*totals))
            for key, totals in self._deltas.items()
            if totals[0] or totals[1] or totals[2]
        )


def _time(value: Any) -> datetime:
    """A decoded datetime, or one in its stored form."""
    return value if isinstance(value, datetime) else stored_time(value)


def _next_facts(
    before: IncidentFacts | None, event_type: str, fields: Mapping[str, Any]
) -> IncidentFacts | None:
    if event_type == "ShootingReported":
        return IncidentFacts(
            municipality_code=fields["municipality_code"],
            police_zone_code=fields["police_zone_code"],
            occurred_at=_time(fields["occurred_at"]),
            killed=fields["killed"],
            injured=fields["injured"],
        )
    if before is None:
        return None
    if event_type == "CasualtiesRevised":
        return replace(before, killed=fields["killed"], injured=fields["injured"])
    if event_type == "IncidentAmended":
        corrections = fields["corrections"]
        facts = before
        if "occurred_at" in corrections:
            facts = replace(facts, occurred_at=_time(corrections["occurred_at"]))
        if "municipality_code" in corrections:
            facts = replace(
                facts,
                municipality_code=corrections["municipality_code"],
                police_zone_code=fields["police_zone_code"],
            )
        return facts
    return before
