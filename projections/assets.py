"""The asset recovery ledger as a pure fold: which movements each asset case event makes.

A seizure names its items, so it makes one `seized` movement per asset kind, with the
seizure's gang and municipality. Confiscations, reinvestments and releases name an amount of
the case, not items, so:

- they carry no asset kind (the ledger does not pretend to know which items a court decision
  concerns);
- they are split over the gangs and municipalities of the case's seizures in proportion to
  the value seized in each as of the decision, by largest remainder so that the cents add up
  (one movement when the case has one gang and one municipality, the usual case).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from projections.base import Recorded
from projections.statistics import period_keys
from service.areas import AreaCatalog

NAME = "asset_recovery"
EVENT_TYPES = (
    "AssetCaseOpened",
    "AssetsSeized",
    "AssetsConfiscated",
    "AssetsReinvested",
    "AssetsReleased",
)
SEIZED = "seized"
CONFISCATED = "confiscated"
REINVESTED = "reinvested"
RELEASED = "released"
MOVEMENT_KINDS = (SEIZED, CONFISCATED, REINVESTED, RELEASED)
_MOVEMENT_OF_EVENT = {
    "AssetsConfiscated": CONFISCATED,
    "AssetsReinvested": REINVESTED,
    "AssetsReleased": RELEASED,
}

K = TypeVar("K", bound=Hashable)
Origin = tuple[str, str]
"""Where value was seized: (gang id or "" for none, municipality code)."""


@dataclass(frozen=True)
class Movement:
    """One line of the ledger: an amount moving at one stage of a case."""

    position: int
    seq: int
    """Its rank among the movements of the event at `position`."""
    case_id: UUID
    case_reference: str
    kind: str
    """seized, confiscated, reinvested or released."""
    amount_cents: int
    occurred_at: datetime
    periods: Mapping[str, str]
    """The local day, week, month and year of occurred_at (see period_keys)."""
    gang_id: str
    municipality_code: str
    asset_kind: str = ""
    """The kind of the seized items; empty for the other movements."""
    beneficiary_kind: str = ""
    beneficiary_name: str = ""


@dataclass
class CaseState:
    """What the ledger needs to remember of a case: its reference and where value was seized."""

    case_reference: str
    seized: dict[Origin, int] = field(default_factory=dict)


def split_pro_rata(amount: int, weights: Mapping[K, int]) -> dict[K, int]:
    """Split `amount` in proportion to `weights`; the parts add up to `amount` exactly.

    Each part is the floor of its exact share; the cents left over go one each to the largest
    remainders (ties to the smallest key, so the split is deterministic). Parts of 0 are left
    out; with no positive weight the result is empty.
    """
    total = sum(w for w in weights.values() if w > 0)
    if total == 0 or amount == 0:
        return {}
    keys = sorted((k for k, w in weights.items() if w > 0), key=repr)
    parts = {k: amount * weights[k] // total for k in keys}
    remainders = {k: amount * weights[k] % total for k in keys}
    left = amount - sum(parts.values())
    for k in sorted(keys, key=lambda k: -remainders[k])[:left]:
        parts[k] += 1
    return {k: part for k, part in parts.items() if part}


class AssetLedgerBatch:
    """Folds a batch of asset case events into ledger movements, in memory."""

    def __init__(self, catalog: AreaCatalog, known: Mapping[UUID, CaseState]) -> None:
        self._zone = ZoneInfo(catalog.timezone)
        self.cases: dict[UUID, CaseState] = {
            case_id: CaseState(state.case_reference, dict(state.seized))
            for case_id, state in known.items()
        }
        self.opened: set[UUID] = set()
        self.movements: list[Movement] = []

    def apply(self, recorded: Recorded) -> None:
        """Fold one event of a case."""
        event = recorded.event
        case_id = recorded.originator_id
        if recorded.event_type == "AssetCaseOpened":
            self.cases[case_id] = CaseState(event.case_reference)
            self.opened.add(case_id)
            return
        # A case opened before a reset that skipped it is still followed, without its reference.
        case = self.cases.setdefault(case_id, CaseState(""))
        if recorded.event_type == "AssetsSeized":
            self._seized(recorded, case)
        elif recorded.event_type in _MOVEMENT_OF_EVENT:
            self._decided(recorded, case, _MOVEMENT_OF_EVENT[recorded.event_type])

    def _seized(self, recorded: Recorded, case: CaseState) -> None:
        event = recorded.event
        origin: Origin = (str(event.gang_id) if event.gang_id else "", event.municipality_code)
        by_kind: dict[str, int] = {}
        for item in event.items:
            kind = item.kind.value
            by_kind[kind] = by_kind.get(kind, 0) + item.estimated_value_cents
        for seq, (kind, cents) in enumerate(sorted(by_kind.items())):
            self._move(
                recorded, case, seq=seq, kind=SEIZED, cents=cents, origin=origin, asset_kind=kind
            )
        case.seized[origin] = case.seized.get(origin, 0) + sum(by_kind.values())

    def _decided(self, recorded: Recorded, case: CaseState, kind: str) -> None:
        event = recorded.event
        beneficiary = getattr(event, "beneficiary", None)
        extra: dict[str, str] = {}
        if beneficiary is not None:
            extra = {
                "beneficiary_kind": beneficiary.kind.value,
                "beneficiary_name": beneficiary.name,
            }
        # The domain keeps decisions within the value seized, so the case has seized value;
        # should it have none, the amount stays in the ledger without gang or municipality.
        parts = split_pro_rata(event.amount_cents, case.seized) or {("", ""): event.amount_cents}
        for seq, (origin, cents) in enumerate(sorted(parts.items())):
            self._move(recorded, case, seq=seq, kind=kind, cents=cents, origin=origin, **extra)

    def _move(
        self,
        recorded: Recorded,
        case: CaseState,
        *,
        seq: int,
        kind: str,
        cents: int,
        origin: Origin,
        **extra: str,
    ) -> None:
        occurred_at: datetime = recorded.event.occurred_at
        self.movements.append(
            Movement(
                position=recorded.position,
                seq=seq,
                case_id=recorded.originator_id,
                case_reference=case.case_reference,
                kind=kind,
                amount_cents=cents,
                occurred_at=occurred_at,
                periods=period_keys(occurred_at, self._zone),
                gang_id=origin[0],
                municipality_code=origin[1],
                **extra,
            )
        )
