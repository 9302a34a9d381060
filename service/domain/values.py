"""Value objects and enumerations shared by the aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class TimePrecision(Enum):
    """How precisely an occurrence time is known."""

    EXACT = "exact"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class WeaponKind(Enum):
    """Kinds of firearms used in shootings."""

    HANDGUN = "handgun"
    ASSAULT_RIFLE = "assault_rifle"
    SHOTGUN = "shotgun"
    OTHER = "other"
    UNKNOWN = "unknown"


class SourceKind(Enum):
    """Where reported information came from."""

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
    """How an incident relates to another, seen from the first."""

    RETALIATION_FOR = "retaliation_for"
    RETALIATED_BY = "retaliated_by"
    SAME_SERIES = "same_series"

    def inverse(self) -> LinkKind:
        """Return the relation as seen from the other incident."""
        if self is LinkKind.RETALIATION_FOR:
            return LinkKind.RETALIATED_BY
        if self is LinkKind.RETALIATED_BY:
            return LinkKind.RETALIATION_FOR
        return self


class AssetKind(Enum):
    """Kinds of seized assets."""

    CASH = "cash"
    VEHICLE = "vehicle"
    REAL_ESTATE = "real_estate"
    WEAPON = "weapon"
    DRUGS = "drugs"
    CRYPTO = "crypto"
    OTHER = "other"


class BeneficiaryKind(Enum):
    """Who receives reinvested assets."""

    LAW_ENFORCEMENT = "law_enforcement"
    SOCIAL_PROGRAMME = "social_programme"


@dataclass(frozen=True)
class GeoPoint:
    """A WGS 84 coordinate."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class Weapon:
    """A kind of weapon used and how many."""

    kind: WeaponKind
    count: int


@dataclass(frozen=True)
class Source:
    """Provenance of reported facts."""

    kind: SourceKind
    name: str
    reference: str
    retrieved_at: datetime | None


@dataclass(frozen=True)
class AssetItem:
    """One seized item or lot, valued in minor currency units."""

    kind: AssetKind
    description: str
    estimated_value_cents: int
    quantity: int
    weight_kg: float


@dataclass(frozen=True)
class Beneficiary:
    """The recipient of reinvested assets."""

    kind: BeneficiaryKind
    name: str


VALUE_TYPES: tuple[type, ...] = (GeoPoint, Weapon, Source, AssetItem, Beneficiary)
ENUM_TYPES: tuple[type[Enum], ...] = (
    TimePrecision,
    WeaponKind,
    SourceKind,
    AttributionStatus,
    LinkKind,
    AssetKind,
    BeneficiaryKind,
)
