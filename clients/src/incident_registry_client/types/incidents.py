"""Incidents: shootings, their weapons, sources, attributions, links and corrections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from uuid import UUID

from incident_registry_client.types.common import GeoPoint


class TimePrecision(Enum):
    """How precisely an occurred_at time is known."""

    EXACT = "exact"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class WeaponKind(Enum):
    """The kind of firearm used in a shooting."""

    HANDGUN = "handgun"
    ASSAULT_RIFLE = "assault_rifle"
    SHOTGUN = "shotgun"
    OTHER = "other"
    UNKNOWN = "unknown"


class SourceKind(Enum):
    """Where a piece of information came from."""

    POLICE_REPORT = "police_report"
    PROSECUTOR = "prosecutor"
    PRESS = "press"
    WITNESS = "witness"
    HOSPITAL = "hospital"
    OTHER = "other"


class AttributionStatus(Enum):
    """How firmly an incident is attributed to a gang."""

    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"


class LinkKind(Enum):
    """How two incidents are related, seen from the first one."""

    RETALIATION_FOR = "retaliation_for"
    RETALIATED_BY = "retaliated_by"
    SAME_SERIES = "same_series"


@dataclass(frozen=True)
class Weapon:
    """One kind of weapon used in a shooting and how many of them."""

    kind: WeaponKind
    count: int = 1


@dataclass(frozen=True)
class Source:
    """The provenance of reported facts."""

    kind: SourceKind
    name: str = ""
    reference: str = ""
    retrieved_at: datetime | None = None


@dataclass(frozen=True)
class Attribution:
    """A current (not retracted) attribution of an incident to a gang."""

    gang_id: UUID
    confidence: float
    status: AttributionStatus
    basis: str
    attributed_at: datetime | None


@dataclass(frozen=True)
class IncidentLink:
    """A relation of an incident to another incident."""

    related_incident_id: UUID
    kind: LinkKind
    note: str = ""


@dataclass(frozen=True)
class Incident:
    """The current state of a reported shooting."""

    incident_id: UUID
    version: int
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
    attributions: tuple[Attribution, ...]
    links: tuple[IncidentLink, ...]
    recorded_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class IncidentCorrection:
    """Corrected facts of an incident: every field left None stays as it is.

    `location=None` leaves the location alone; `clear_location=True` removes it.
    """

    occurred_at: datetime | None = None
    occurred_at_precision: TimePrecision | None = None
    municipality_code: str | None = None
    address: str | None = None
    location: GeoPoint | None = None
    clear_location: bool = False
    weapons: Sequence[Weapon] | None = None
    assailant_count: int | None = None
    assailants_masked: bool | None = None
    drug_nexus: bool | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.clear_location and self.location is not None:
            msg = "give either location or clear_location=True, not both"
            raise ValueError(msg)
        if self.weapons is not None:
            object.__setattr__(self, "weapons", tuple(self.weapons))

    @property
    def corrected_fields(self) -> tuple[str, ...]:
        """The names of the corrected fields (the update mask), in declaration order."""
        names = []
        for field in fields(self):
            if field.name == "clear_location":
                continue
            if getattr(self, field.name) is not None or (
                field.name == "location" and self.clear_location
            ):
                names.append(field.name)
        return tuple(names)


@dataclass(frozen=True, kw_only=True)
class ShootingReport:
    """A shooting as first reported: the arguments of `report_shooting`, one of a batch.

    `request_id` is the idempotency key (the client makes one when it is None).
    """

    occurred_at: datetime
    occurred_at_precision: TimePrecision
    municipality_code: str
    reported_at: datetime | None = None
    address: str = ""
    location: GeoPoint | None = None
    weapons: Sequence[Weapon] = ()
    assailant_count: int = 0
    assailants_masked: bool = False
    killed: int = 0
    injured: int = 0
    drug_nexus: bool = False
    description: str = ""
    sources: Sequence[Source] = ()
    external_reference: str = ""
    request_id: str | None = None
    expected_version: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weapons", tuple(self.weapons))
        object.__setattr__(self, "sources", tuple(self.sources))
