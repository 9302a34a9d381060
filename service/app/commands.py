"""Commands: what callers ask the registry to record, in domain terms."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from service.domain.values import (
    AssetItem,
    AttributionStatus,
    Beneficiary,
    GeoPoint,
    LinkKind,
    Source,
    TimePrecision,
    Weapon,
)


@dataclass(frozen=True)
class Command:
    """Base of all commands; `occurred_at` is business time, None meaning "now"."""

    def fingerprint(self, expected_version: int | None) -> str:
        """Return a digest that tells a retry of this request from a different one."""
        text = f"{type(self).__name__}|{expected_version}|{self!r}"
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ReportShooting(Command):
    """Record a newly reported shooting."""

    occurred_at: datetime
    occurred_at_precision: TimePrecision
    municipality_code: str
    reported_at: datetime | None = None
    address: str = ""
    location: GeoPoint | None = None
    weapons: tuple[Weapon, ...] = ()
    assailant_count: int = 0
    assailants_masked: bool = False
    killed: int = 0
    injured: int = 0
    drug_nexus: bool = False
    description: str = ""
    sources: tuple[Source, ...] = ()
    external_reference: str = ""


@dataclass(frozen=True)
class ReviseCasualties(Command):
    """Set new casualty totals of an incident."""

    incident_id: UUID
    killed: int
    injured: int
    reason: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class AmendIncident(Command):
    """Correct facts of an incident; `corrections` maps amendable field names to values."""

    incident_id: UUID
    corrections: Mapping[str, object]
    reason: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class AttributeToGang(Command):
    """Attribute an incident to a gang."""

    incident_id: UUID
    gang_id: UUID
    confidence: float
    status: AttributionStatus
    basis: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RetractAttribution(Command):
    """Withdraw an attribution."""

    incident_id: UUID
    gang_id: UUID
    reason: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ErasePersonalData(Command):
    """Erase the personal data about participants recorded on an incident."""

    incident_id: UUID
    reason: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class LinkIncidents(Command):
    """Relate two incidents."""

    incident_id: UUID
    related_incident_id: UUID
    kind: LinkKind
    note: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RegisterGang(Command):
    """Register a gang."""

    name: str
    aliases: tuple[str, ...] = ()
    territory_municipality_codes: tuple[str, ...] = ()
    territory_description: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class AddGangAlias(Command):
    """Add an alias to a gang."""

    gang_id: UUID
    alias: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class UnifyPoliceCommand(Command):
    """Place municipalities or whole police zones under one temporary command."""

    lead_authority: str
    reason: str
    municipality_codes: tuple[str, ...] = ()
    police_zone_codes: tuple[str, ...] = ()
    starts_at: datetime | None = None
    planned_end_at: datetime | None = None
    triggering_incident_ids: tuple[UUID, ...] = ()
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class EndUnifiedCommand(Command):
    """End an active unified command."""

    command_id: UUID
    reason: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RecordAssetSeizure(Command):
    """Record a seizure in the case named by its reference."""

    occurred_at: datetime
    case_reference: str
    municipality_code: str
    items: tuple[AssetItem, ...]
    gang_id: UUID | None = None
    incident_ids: tuple[UUID, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ConfiscateAssets(Command):
    """Record a court's confiscation."""

    case_id: UUID
    amount_cents: int
    court: str
    decision_reference: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ReinvestAssets(Command):
    """Record a reinvestment of confiscated value."""

    case_id: UUID
    amount_cents: int
    beneficiary: Beneficiary
    note: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ReleaseAssets(Command):
    """Record a court's release of confiscated value."""

    case_id: UUID
    amount_cents: int
    court: str
    decision_reference: str
    reason: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RecordWave(Command):
    """Record a violence wave found by the waves projection (times in UTC, ids in time order).

    The trigger is the incident event that completed the wave: its stream (one of the
    incidents), version and log position.
    """

    area_kind: str
    area_code: str
    incident_ids: tuple[UUID, ...]
    municipality_codes: tuple[str, ...]
    first_occurred_at: datetime
    last_occurred_at: datetime
    min_shootings: int
    window_hours: int
    trigger_incident_id: UUID
    trigger_version: int
    trigger_position: int
