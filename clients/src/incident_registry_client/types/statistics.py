"""Statistics read models: area statistics, incident breakdowns and watched dashboards."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from incident_registry_client.types.areas import AreaKind, PeriodKind
from incident_registry_client.types.incidents import WeaponKind
from incident_registry_client.types.queries import ConfidenceBand, IncidentAttributionStatus


@dataclass(frozen=True)
class AreaPeriodStatistics:
    """Incidents, killed and injured in one area in one period."""

    area_kind: AreaKind
    area_code: str
    period_kind: PeriodKind
    period: str
    incidents: int
    killed: int
    injured: int


@dataclass(frozen=True)
class AreaStatistics:
    """The selected rows (by area code, then period) and the log position they reflect."""

    rows: tuple[AreaPeriodStatistics, ...]
    position: int


@dataclass(frozen=True)
class StatisticsTotals:
    """Incidents, killed and injured summed over a selection."""

    incidents: int
    killed: int
    injured: int


@dataclass(frozen=True)
class HourWeekdayCell:
    """Incidents at one local hour (0-23) of one ISO weekday (1 is Monday)."""

    weekday: int
    hour: int
    incidents: int


@dataclass(frozen=True)
class WeaponKindBreakdown:
    """The incidents in which one kind of weapon was used, and the weapons counted."""

    kind: WeaponKind
    incidents: int
    weapons: int


@dataclass(frozen=True)
class AttributionStatusShare:
    """The incidents with one attribution status and their share (0-1) of the selection."""

    status: IncidentAttributionStatus
    incidents: int
    share: float


@dataclass(frozen=True)
class ConfidenceBandShare:
    """The incidents whose strongest attribution is in one band, and their share (0-1)."""

    band: ConfidenceBand
    incidents: int
    share: float


@dataclass(frozen=True)
class GangBreakdown:
    """The selected incidents currently attributed to one gang."""

    gang_id: UUID
    incidents: int
    killed: int
    injured: int
    suspected_incidents: int
    confirmed_incidents: int


@dataclass(frozen=True)
class IncidentBreakdown:
    """A description of a selection of incidents, from the incidents read model."""

    totals: StatisticsTotals
    hour_weekday: tuple[HourWeekdayCell, ...]
    weapon_kinds: tuple[WeaponKindBreakdown, ...]
    attribution_statuses: tuple[AttributionStatusShare, ...]
    confidence_bands: tuple[ConfidenceBandShare, ...]
    gangs: tuple[GangBreakdown, ...]
    position: int


@dataclass(frozen=True)
class StatisticsUpdate:
    """One message of a statistics watch.

    A snapshot (`snapshot=True`) holds every row of the selection and replaces what was shown
    before (a watch sends a new one after it reconnects); a change holds only the rows that
    changed, a row with zero incidents meaning "remove it". `totals` cover the whole selection.
    """

    snapshot: bool
    rows: tuple[AreaPeriodStatistics, ...]
    totals: StatisticsTotals
    position: int
