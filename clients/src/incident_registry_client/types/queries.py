"""The incidents and waves read models: listings of incidents and violence waves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from uuid import UUID

from incident_registry_client.types.areas import AreaKind
from incident_registry_client.types.incidents import AttributionStatus, Weapon


class IncidentAttributionStatus(Enum):
    """How firmly an incident as a whole is attributed."""

    UNATTRIBUTED = "unattributed"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"


class ConfidenceBand(Enum):
    """Attribution confidence bands: low < 0.5 <= medium < 0.8 <= high."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class AttributionSummary:
    """A current attribution of an incident, with its confidence band."""

    gang_id: UUID
    confidence: float
    status: AttributionStatus
    confidence_band: ConfidenceBand
    attributed_at: datetime | None


@dataclass(frozen=True)
class IncidentSummary:
    """The current state of an incident as the incidents read model holds it."""

    incident_id: UUID
    version: int
    position: int
    occurred_at: datetime | None
    reported_at: datetime | None
    municipality_code: str
    police_zone_code: str
    local_day: str
    local_week: str
    local_month: str
    local_year: str
    local_hour: int
    local_weekday: int
    killed: int
    injured: int
    weapons: tuple[Weapon, ...]
    address: str
    description: str
    drug_nexus: bool
    attribution_status: IncidentAttributionStatus
    attributions: tuple[AttributionSummary, ...]
    link_count: int


@dataclass(frozen=True)
class ViolenceWave:
    """A detected violence wave and its current shootings."""

    wave_id: UUID
    area_kind: AreaKind
    area_code: str
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    incident_ids: tuple[UUID, ...]
    detected_incident_ids: tuple[UUID, ...]
    min_shootings: int
    window_hours: int
    trigger_position: int
    detected_position: int
