"""The asset recovery read model: a ledger of amounts grouped one way, with totals."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from uuid import UUID

from incident_registry_client.types.assets import AssetKind, Beneficiary


class AssetRecoveryGrouping(Enum):
    """What the rows of asset recovery statistics are grouped by."""

    PERIOD = "period"
    ASSET_KIND = "asset_kind"
    GANG = "gang"
    BENEFICIARY = "beneficiary"
    MUNICIPALITY = "municipality"


@dataclass(frozen=True)
class AssetRecoveryRow:
    """The amounts of one group, in minor units of the statistics' currency.

    Only the key of the grouping is set: `period` ("" otherwise), `asset_kind` (None also
    for the row of amounts not attributed to a kind), `gang_id` (None also for seizures linked
    to no gang), `beneficiary` (None also for amounts without one), `municipality_code`.
    """

    period: str
    asset_kind: AssetKind | None
    gang_id: UUID | None
    beneficiary: Beneficiary | None
    municipality_code: str
    seized_value_cents: int
    confiscated_value_cents: int
    reinvested_value_cents: int
    released_value_cents: int


@dataclass(frozen=True)
class AssetRecoveryTotals:
    """The sums of the rows and the share of the confiscated value that was reinvested."""

    seized_value_cents: int
    confiscated_value_cents: int
    reinvested_value_cents: int
    released_value_cents: int
    reinvested_share: float


@dataclass(frozen=True)
class AssetRecoveryStatistics:
    """Rows and totals, every amount in `currency`, and the log position they reflect."""

    rows: tuple[AssetRecoveryRow, ...]
    totals: AssetRecoveryTotals
    currency: str
    position: int
