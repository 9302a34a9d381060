"""Asset recovery cases: seizures, court decisions and reinvestments.

Money is an integer number of minor units (`*_cents`) of the catalog's currency; values that
hold amounts say which currency in their `currency` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from uuid import UUID


class AssetKind(Enum):
    """The kind of a seized asset."""

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
class AssetItem:
    """One seized item or lot, valued in minor currency units."""

    kind: AssetKind
    estimated_value_cents: int
    description: str = ""
    quantity: int = 1
    weight_kg: float = 0.0


@dataclass(frozen=True)
class Beneficiary:
    """The receiver of reinvested assets: a police or justice service, or a social programme."""

    kind: BeneficiaryKind
    name: str


@dataclass(frozen=True)
class Seizure:
    """One recorded seizure within an asset case."""

    seized_at: datetime | None
    municipality_code: str
    gang_id: UUID | None
    incident_ids: tuple[UUID, ...]
    items: tuple[AssetItem, ...]
    description: str


@dataclass(frozen=True)
class Reinvestment:
    """An amount reinvested from a case."""

    amount_cents: int
    beneficiary: Beneficiary
    note: str
    reinvested_at: datetime | None


@dataclass(frozen=True)
class CourtDecision:
    """A court's confiscation or release of an amount."""

    amount_cents: int
    court: str
    decision_reference: str
    reason: str
    decided_at: datetime | None


@dataclass(frozen=True)
class AssetCase:
    """The current state of an asset recovery case; every amount is in `currency`."""

    case_id: UUID
    version: int
    case_reference: str
    seizures: tuple[Seizure, ...]
    seized_value_cents: int
    confiscated_value_cents: int
    reinvested_value_cents: int
    released_value_cents: int
    available_value_cents: int
    confiscations: tuple[CourtDecision, ...]
    releases: tuple[CourtDecision, ...]
    reinvestments: tuple[Reinvestment, ...]
    currency: str
    recorded_at: datetime | None
    updated_at: datetime | None
