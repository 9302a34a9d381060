"""Recorded events: the envelope every read of the log returns, and the typed payloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from incident_registry_client.types.areas import AreaKind
from incident_registry_client.types.assets import AssetItem, Beneficiary
from incident_registry_client.types.common import GeoPoint
from incident_registry_client.types.incidents import (
    AttributionStatus,
    IncidentCorrection,
    LinkKind,
    Source,
    TimePrecision,
    Weapon,
)


@dataclass(frozen=True)
class ShootingReported:
    """A newly reported shooting."""

    occurred_at: datetime | None
    occurred_at_precision: TimePrecision
    reported_at: datetime | None
    municipality_code: str
    police_zone_code: str
    address: str
    location: GeoPoint | None
    weapons: tuple[Weapon, ...]
    assailant_count: int
    assailants_masked: bool
    killed: int
    injured: int
    drug_nexus: bool
    description: str
    sources: tuple[Source, ...]
    external_reference: str


@dataclass(frozen=True)
class CasualtiesRevised:
    """New casualty totals of an incident."""

    killed: int
    injured: int
    reason: str


@dataclass(frozen=True)
class IncidentAmended:
    """Corrected facts of an incident (only the corrected fields are set)."""

    correction: IncidentCorrection
    reason: str
    police_zone_code: str


@dataclass(frozen=True)
class AttributedToGang:
    """An attribution of an incident to a gang, or its revision."""

    gang_id: UUID
    confidence: float
    status: AttributionStatus
    basis: str


@dataclass(frozen=True)
class AttributionRetracted:
    """The withdrawal of an attribution."""

    gang_id: UUID
    reason: str


@dataclass(frozen=True)
class PersonalDataErased:
    """The erasure of an incident's personal data (its witness sources' names and
    references); who erased it is the event's `metadata.actor`."""

    reason: str


@dataclass(frozen=True)
class IncidentLinked:
    """A relation to another incident."""

    related_incident_id: UUID
    kind: LinkKind
    note: str


@dataclass(frozen=True)
class GangRegistered:
    """A newly registered gang."""

    name: str
    aliases: tuple[str, ...]
    territory_municipality_codes: tuple[str, ...]
    territory_description: str


@dataclass(frozen=True)
class GangAliasAdded:
    """A new alias of a gang."""

    alias: str


@dataclass(frozen=True)
class PoliceCommandUnified:
    """A new unified police command."""

    municipality_codes: tuple[str, ...]
    police_zone_codes: tuple[str, ...]
    lead_authority: str
    reason: str
    starts_at: datetime | None
    planned_end_at: datetime | None
    triggering_incident_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class UnifiedCommandEnded:
    """The end of a unified command."""

    reason: str


@dataclass(frozen=True)
class MunicipalityCommandSlotCreated:
    """A municipality's command slot, first used."""

    municipality_code: str


@dataclass(frozen=True)
class MunicipalityCommandAssigned:
    """The slot's municipality came under a command."""

    command_id: UUID


@dataclass(frozen=True)
class MunicipalityCommandReleased:
    """The slot's municipality left a command."""

    command_id: UUID


@dataclass(frozen=True)
class AssetCaseOpened:
    """A new asset recovery case; its seizures follow as AssetsSeized."""

    case_reference: str


@dataclass(frozen=True)
class AssetsSeized:
    """A seizure in an asset case."""

    municipality_code: str
    gang_id: UUID | None
    incident_ids: tuple[UUID, ...]
    items: tuple[AssetItem, ...]
    description: str


@dataclass(frozen=True)
class AssetsConfiscated:
    """A court confiscation, in minor currency units."""

    amount_cents: int
    court: str
    decision_reference: str


@dataclass(frozen=True)
class AssetsReinvested:
    """A reinvestment, in minor currency units."""

    amount_cents: int
    beneficiary: Beneficiary
    note: str


@dataclass(frozen=True)
class AssetsReleased:
    """A court release, in minor currency units."""

    amount_cents: int
    court: str
    decision_reference: str
    reason: str


@dataclass(frozen=True)
class WaveDetected:
    """A violence wave found in the log by the waves projection (a derived event)."""

    area_kind: AreaKind
    area_code: str
    incident_ids: tuple[UUID, ...]
    municipality_codes: tuple[str, ...]
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    min_shootings: int
    window_hours: int
    trigger_position: int


EventPayload = (
    ShootingReported
    | CasualtiesRevised
    | IncidentAmended
    | AttributedToGang
    | AttributionRetracted
    | IncidentLinked
    | PersonalDataErased
    | GangRegistered
    | GangAliasAdded
    | PoliceCommandUnified
    | UnifiedCommandEnded
    | MunicipalityCommandSlotCreated
    | MunicipalityCommandAssigned
    | MunicipalityCommandReleased
    | AssetCaseOpened
    | AssetsSeized
    | AssetsConfiscated
    | AssetsReinvested
    | AssetsReleased
    | WaveDetected
)
"""Any typed event payload."""


@dataclass(frozen=True)
class EventMetadata:
    """Who recorded an event and why.

    `trace_id` is the W3C trace id of the call that recorded the event when the server
    traced it, else "".
    """

    actor: str
    correlation_id: str
    causation_id: str
    request_id: str
    trace_id: str = ""


@dataclass(frozen=True)
class RecordedEvent:
    """One recorded event with its position in the global log.

    `payload` is None when only JSON was asked for; `payload_json` is "" when only the typed
    payload was.
    """

    event_id: UUID
    stream_id: UUID
    stream_type: str
    stream_version: int
    position: int
    event_type: str
    schema_version: int
    occurred_at: datetime | None
    recorded_at: datetime | None
    metadata: EventMetadata
    payload: EventPayload | None
    payload_json: str
