"""The AssetCase aggregate: seized assets followed to confiscation and reinvestment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from service.domain.base import RegistryAggregate
from service.domain.errors import RuleViolatedError
from service.domain.values import AssetItem, Beneficiary

_CASE_NAMESPACE = uuid5(NAMESPACE_URL, "incident-registry:asset-case")


@dataclass(frozen=True)
class SeizureRecord:
    """One seizure within the case."""

    seized_at: datetime
    municipality_code: str
    gang_id: UUID | None
    incident_ids: tuple[UUID, ...]
    items: tuple[AssetItem, ...]
    description: str

    @property
    def value_cents(self) -> int:
        """Return the total estimated value of the items."""
        return sum(item.estimated_value_cents for item in self.items)


@dataclass(frozen=True)
class CourtDecisionRecord:
    """A court's confiscation or release."""

    amount_cents: int
    court: str
    decision_reference: str
    reason: str
    decided_at: datetime


@dataclass(frozen=True)
class ReinvestmentRecord:
    """An amount reinvested from the case."""

    amount_cents: int
    beneficiary: Beneficiary
    note: str
    reinvested_at: datetime


def case_id(case_reference: str) -> UUID:
    """Return the id of the asset case with the given judicial reference."""
    return uuid5(_CASE_NAMESPACE, case_reference.strip())


class AssetCase(RegistryAggregate):
    """An asset recovery case, identified by its judicial case reference."""

    STREAM_TYPE = "asset_case"

    @staticmethod
    def create_id(case_reference: str) -> UUID:
        """Derive the case id from its reference, so a reference names one case."""
        return case_id(case_reference)

    @event("AssetCaseOpened")
    def __init__(self, *, occurred_at: datetime, case_reference: str) -> None:
        self.case_reference = case_reference
        self.seizures: list[SeizureRecord] = []
        self.confiscations: list[CourtDecisionRecord] = []
        self.releases: list[CourtDecisionRecord] = []
        self.reinvestments: list[ReinvestmentRecord] = []

    def tags(self) -> frozenset[str]:
        """The municipalities and gangs of the case's seizures."""
        tags = {f"municipality:{s.municipality_code}" for s in self.seizures}
        tags.update(f"gang:{s.gang_id}" for s in self.seizures if s.gang_id is not None)
        return frozenset(tags)

    @property
    def seized_cents(self) -> int:
        """Return the total estimated value seized."""
        return sum(s.value_cents for s in self.seizures)

    @property
    def confiscated_cents(self) -> int:
        """Return the total value confiscated by court decisions."""
        return sum(d.amount_cents for d in self.confiscations)

    @property
    def released_cents(self) -> int:
        """Return the total value released by court decisions."""
        return sum(d.amount_cents for d in self.releases)

    @property
    def reinvested_cents(self) -> int:
        """Return the total value reinvested."""
        return sum(r.amount_cents for r in self.reinvestments)

    @property
    def available_cents(self) -> int:
        """Return the confiscated value not yet reinvested or released."""
        return self.confiscated_cents - self.reinvested_cents - self.released_cents

    @event("AssetsSeized")
    def record_seizure(
        self,
        *,
        occurred_at: datetime,
        municipality_code: str,
        gang_id: UUID | None,
        incident_ids: tuple[UUID, ...],
        items: tuple[AssetItem, ...],
        description: str,
    ) -> None:
        """Record a seizure in the case."""
        self.seizures.append(
            SeizureRecord(
                seized_at=occurred_at,
                municipality_code=municipality_code,
                gang_id=gang_id,
                incident_ids=tuple(incident_ids),
                items=tuple(items),
                description=description,
            )
        )

    @event("AssetsConfiscated")
    def confiscate(
        self, *, occurred_at: datetime, amount_cents: int, court: str, decision_reference: str
    ) -> None:
        """Record a confiscation; the total confiscated never exceeds the value seized."""
        if self.confiscated_cents + amount_cents > self.seized_cents:
            msg = (
                f"confiscating {amount_cents} would exceed the value seized in case "
                f"{self.case_reference}: seized {self.seized_cents}, "
                f"already confiscated {self.confiscated_cents}"
            )
            raise RuleViolatedError("confiscated_within_seized", f"asset_case/{self.id}", msg)
        self.confiscations.append(
            CourtDecisionRecord(amount_cents, court, decision_reference, "", occurred_at)
        )

    def _check_within_confiscated(self, amount_cents: int, action: str) -> None:
        if amount_cents > self.available_cents:
            msg = (
                f"{action} {amount_cents} would exceed the confiscated value of case "
                f"{self.case_reference}: confiscated {self.confiscated_cents}, reinvested "
                f"{self.reinvested_cents}, released {self.released_cents}"
            )
            raise RuleViolatedError(
                "reinvested_and_released_within_confiscated", f"asset_case/{self.id}", msg
            )

    @event("AssetsReinvested")
    def reinvest(
        self, *, occurred_at: datetime, amount_cents: int, beneficiary: Beneficiary, note: str
    ) -> None:
        """Record a reinvestment of confiscated value."""
        self._check_within_confiscated(amount_cents, "reinvesting")
        self.reinvestments.append(ReinvestmentRecord(amount_cents, beneficiary, note, occurred_at))

    @event("AssetsReleased")
    def release(
        self,
        *,
        occurred_at: datetime,
        amount_cents: int,
        court: str,
        decision_reference: str,
        reason: str,
    ) -> None:
        """Record a court decision returning confiscated value."""
        self._check_within_confiscated(amount_cents, "releasing")
        self.releases.append(
            CourtDecisionRecord(amount_cents, court, decision_reference, reason, occurred_at)
        )
