"""Queries on the incidents read model: a filtered listing in pages, and breakdowns.

Both run inside one read transaction (one snapshot). Breakdowns are SQL aggregates over the
current state of every selected incident, so they are exact by construction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.incidents import (
    ATTRIBUTION_STATUSES,
    CONFIDENCE_BANDS,
    IncidentState,
    LocalTime,
    to_micros,
)
from projections.incidents_model import STATE_COLUMNS, STATE_WIDTH, load_children, state_from_row
from projections.store import ViewTransaction

LOCAL_COLUMNS = (
    "i.local_day, i.local_week, i.local_month, i.local_year, i.local_hour, i.local_weekday"
)
PERIOD_COLUMNS = {
    "day": "i.local_day",
    "week": "i.local_week",
    "month": "i.local_month",
    "year": "i.local_year",
}
AREA_COLUMNS = {"municipality": "i.municipality_code", "police_zone": "i.police_zone_code"}


def _in(column: str, values: tuple[Any, ...]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _like_pattern(word: str) -> str:
    """A LIKE pattern matching `word` anywhere (its wildcards escaped with a backslash)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class IncidentFilter:
    """What a listing keeps: every filter given must match, any value within one.

    Values are kept sorted and without duplicates, so equal filters have equal fingerprints
    however their values were ordered.
    """

    municipality_codes: tuple[str, ...] = ()
    police_zone_codes: tuple[str, ...] = ()
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    gang_ids: tuple[UUID, ...] = ()
    weapon_kinds: tuple[str, ...] = ()
    min_killed: int = 0
    min_injured: int = 0
    attribution_statuses: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    """Casefolded words that must each occur in the description or the address."""

    def __post_init__(self) -> None:
        for name in (
            "municipality_codes",
            "police_zone_codes",
            "gang_ids",
            "weapon_kinds",
            "attribution_statuses",
            "words",
        ):
            object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))

    def fingerprint(self) -> str:
        """A short digest of the filter, binding page tokens to it."""
        data = asdict(self)
        for name in ("occurred_from", "occurred_to"):
            moment = getattr(self, name)
            data[name] = None if moment is None else to_micros(moment)
        data["gang_ids"] = [str(g) for g in self.gang_ids]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on `proj_incidents i` and its parameters."""
        clauses = ["1 = 1"]
        params: list[Any] = []
        for column, values in (
            ("i.municipality_code", self.municipality_codes),
            ("i.police_zone_code", self.police_zone_codes),
            ("i.attribution_status", self.attribution_statuses),
        ):
            if values:
                clauses.append(_in(column, values))
                params.extend(values)
        if self.occurred_from is not None:
            clauses.append("i.occurred_at >= ?")
            params.append(to_micros(self.occurred_from))
        if self.occurred_to is not None:
            clauses.append("i.occurred_at < ?")
            params.append(to_micros(self.occurred_to))
        if self.min_killed:
            clauses.append("i.killed >= ?")
            params.append(self.min_killed)
        if self.min_injured:
            clauses.append("i.injured >= ?")
            params.append(self.min_injured)
        if self.gang_ids:
            clauses.append(
                "EXISTS (SELECT 1 FROM proj_incident_attributions a "  # noqa: S608 - code's own
                f"WHERE a.incident_id = i.incident_id AND {_in('a.gang_id', self.gang_ids)})"
            )
            params.extend(str(g) for g in self.gang_ids)
        if self.weapon_kinds:
            clauses.append(
                "EXISTS (SELECT 1 FROM proj_incident_weapons w "  # noqa: S608 - code's own
                f"WHERE w.incident_id = i.incident_id AND {_in('w.kind', self.weapon_kinds)})"
            )
            params.extend(self.weapon_kinds)
        for word in self.words:
            clauses.append(
                "(i.description_folded LIKE ? ESCAPE '\\' OR i.address_folded LIKE ? ESCAPE '\\')"
            )
            params.extend([_like_pattern(word)] * 2)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class PageKey:
    """Where a page ends in the listing's order (occurred_at, then incident id, descending)."""

    occurred_at: int
    """Microseconds since the epoch."""
    incident_id: str


@dataclass(frozen=True)
class ListedIncident:
    """An incident of a listing: its state and where its time falls locally."""

    state: IncidentState
    local: LocalTime


def list_incidents(
    tx: ViewTransaction, selection: IncidentFilter, *, after: PageKey | None, limit: int
) -> list[ListedIncident]:
    """Up to `limit` incidents matching `selection`, newest first, after the key `after`."""
    condition, params = selection.where()
    if after is not None:
        condition += " AND (i.occurred_at < ? OR (i.occurred_at = ? AND i.incident_id < ?))"
        params.extend([after.occurred_at, after.occurred_at, after.incident_id])
    rows = tx.fetchall(
        f"SELECT {STATE_COLUMNS}, {LOCAL_COLUMNS} FROM proj_incidents i "  # noqa: S608
        f"WHERE {condition} ORDER BY i.occurred_at DESC, i.incident_id DESC LIMIT ?",
        [*params, limit],
    )
    weapons, attributions = load_children(tx, (row[0] for row in rows))
    return [
        ListedIncident(
            state=state_from_row(row, weapons.get(row[0], []), attributions.get(row[0], [])),
            local=_local(row[STATE_WIDTH:]),
        )
        for row in rows
    ]


def _local(columns: tuple[Any, ...]) -> LocalTime:
    day, week, month, year, hour, weekday = columns
    return LocalTime(day, week, month, year, int(hour), int(weekday))


def page_key(incident: ListedIncident) -> PageKey:
    """The key a page ending with `incident` continues after."""
    return PageKey(to_micros(incident.state.occurred_at), str(incident.state.incident_id))


# --- Breakdowns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Incidents of some areas (all when no codes) in a range of local periods (or all time)."""

    area_kind: str = "municipality"
    area_codes: tuple[str, ...] = ()
    period_kind: str | None = None
    from_period: str = ""
    to_period: str = ""

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on `proj_incidents i` and its parameters."""
        clauses = ["1 = 1"]
        params: list[Any] = []
        if self.area_codes:
            clauses.append(_in(AREA_COLUMNS[self.area_kind], self.area_codes))
            params.extend(self.area_codes)
        if self.period_kind is not None:
            column = PERIOD_COLUMNS[self.period_kind]
            if self.from_period:
                clauses.append(f"{column} >= ?")
                params.append(self.from_period)
            if self.to_period:
                clauses.append(f"{column} <= ?")
                params.append(self.to_period)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class GangCounts:
    """The selected incidents attributed to one gang."""

    gang_id: str
    incidents: int
    killed: int
    injured: int
    suspected: int
    confirmed: int


@dataclass(frozen=True)
class Breakdown:
    """Counts of the selected incidents, several ways."""

    incidents: int
    killed: int
    injured: int
    hour_weekday: dict[tuple[int, int], int]
    """(ISO weekday, hour) -> incidents; only cells with incidents."""
    weapons: dict[str, tuple[int, int]]
    """Weapon kind -> (incidents, weapons); only kinds used."""
    statuses: dict[str, int]
    """Attribution status -> incidents, for every status."""
    bands: dict[str, int]
    """Band of the strongest attribution -> incidents, for every band."""
    gangs: list[GangCounts]
    """Most incidents first, then by gang id."""


def incident_breakdown(tx: ViewTransaction, selection: Selection) -> Breakdown:
    """Totals, hour by weekday, weapons, attribution shares and gangs of the selection."""
    condition, params = selection.where()
    selected = f"FROM proj_incidents i WHERE {condition}"
    totals = tx.fetchone(
        f"SELECT COUNT(*), COALESCE(SUM(i.killed), 0), COALESCE(SUM(i.injured), 0) {selected}",
        params,
    )
    assert totals is not None
    cells = tx.fetchall(
        f"SELECT i.local_weekday, i.local_hour, COUNT(*) {selected} "
        "GROUP BY i.local_weekday, i.local_hour",
        params,
    )
    weapons = tx.fetchall(
        "SELECT w.kind, COUNT(*), SUM(w.weapon_count) FROM proj_incident_weapons w "  # noqa: S608
        f"JOIN proj_incidents i ON i.incident_id = w.incident_id WHERE {condition} "
        "GROUP BY w.kind",
        params,
    )
    statuses = dict.fromkeys(ATTRIBUTION_STATUSES, 0)
    for status, count in tx.fetchall(
        f"SELECT i.attribution_status, COUNT(*) {selected} GROUP BY i.attribution_status", params
    ):
        statuses[status] = int(count)
    bands = dict.fromkeys(CONFIDENCE_BANDS, 0)
    for band, count in tx.fetchall(
        f"SELECT i.strongest_band, COUNT(*) {selected} AND i.strongest_band <> '' "
        "GROUP BY i.strongest_band",
        params,
    ):
        bands[band] = int(count)
    gangs = tx.fetchall(
        "SELECT a.gang_id, COUNT(*), SUM(i.killed), SUM(i.injured), "  # noqa: S608
        "SUM(CASE WHEN a.status = 'suspected' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN a.status = 'confirmed' THEN 1 ELSE 0 END) "
        "FROM proj_incident_attributions a "
        f"JOIN proj_incidents i ON i.incident_id = a.incident_id WHERE {condition} "
        "GROUP BY a.gang_id",
        params,
    )
    ranked = sorted(
        (GangCounts(str(g), *(int(v) for v in values)) for g, *values in gangs),
        key=lambda c: (-c.incidents, c.gang_id),
    )
    return Breakdown(
        incidents=int(totals[0]),
        killed=int(totals[1]),
        injured=int(totals[2]),
        hour_weekday={(int(d), int(h)): int(n) for d, h, n in cells},
        weapons={kind: (int(n), int(total)) for kind, n, total in weapons},
        statuses=statuses,
        bands=bands,
        gangs=ranked,
    )
