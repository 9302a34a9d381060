"""The Incident aggregate: a shooting and everything learned about it afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanInitAggregate, event

from service.domain.base import RegistryAggregate
from service.domain.errors import FieldViolation, InvalidArgumentError, RuleViolatedError
from service.domain.values import (
    AttributionStatus,
    GeoPoint,
    LinkKind,
    Source,
    TimePrecision,
    Weapon,
)

AMENDABLE_FIELDS = frozenset(
    {
        "occurred_at",
        "occurred_at_precision",
        "municipality_code",
        "address",
        "location",
        "weapons",
        "assailant_count",
        "assailants_masked",
        "drug_nexus",
        "description",
    }
)


@dataclass(frozen=True)
class Attribution:
    """A current attribution of the incident to a gang."""

    gang_id: UUID
    confidence: float
    status: AttributionStatus
    basis: str
    attributed_at: datetime


@dataclass(frozen=True)
class IncidentLink:
    """A relation to another incident, seen from this one."""

    related_incident_id: UUID
    kind: LinkKind
    note: str


class Incident(RegistryAggregate):
    """A reported shooting."""

    STREAM_TYPE = "incident"

    @event("ShootingReported")
    def __init__(
        self,
        *,
        occurred_at: datetime,
        occurred_at_precision: TimePrecision,
        reported_at: datetime,
        municipality_code: str,
        police_zone_code: str,
        address: str,
        location: GeoPoint | None,
        weapons: tuple[Weapon, ...],
        assailant_count: int,
        assailants_masked: bool,
        killed: int,
        injured: int,
        drug_nexus: bool,
        description: str,
        sources: tuple[Source, ...],
        external_reference: str,
    ) -> None:
        if occurred_at > reported_at:
            raise InvalidArgumentError(
                [FieldViolation("occurred_at", "must not be after reported_at")]
            )
        self.occurred_at = occurred_at
        self.occurred_at_precision = occurred_at_precision
        self.reported_at = reported_at
        self.municipality_code = municipality_code
        self.police_zone_code = police_zone_code
        self.address = address
        self.location = location
        self.weapons = tuple(weapons)
        self.assailant_count = assailant_count
        self.assailants_masked = assailants_masked
        self.killed = killed
        self.injured = injured
        self.drug_nexus = drug_nexus
        self.description = description
        self.sources = tuple(sources)
        self.external_reference = external_reference
        self.attributions: dict[UUID, Attribution] = {}
        self.links: dict[UUID, IncidentLink] = {}
        self.personal_data_erased = False

    @classmethod
    def report(cls, incident_id: UUID, **fields: Any) -> Incident:
        """Record a shooting under a chosen id: `fields` are those of `__init__`.

        The application chooses the id so that the incident's personal data can be sealed
        with a key of that incident before the incident exists.
        """
        created: type[CanInitAggregate[Any]] = vars(cls)["ShootingReported"]
        return cls._create(created, id=incident_id, **fields)

    def tags(self) -> frozenset[str]:
        """The incident's municipality and the gangs it is currently attributed to."""
        return frozenset(
            {f"municipality:{self.municipality_code}", *(f"gang:{g}" for g in self.attributions)}
        )

    @event("CasualtiesRevised")
    def revise_casualties(
        self, *, occurred_at: datetime, killed: int, injured: int, reason: str
    ) -> None:
        """Set new casualty totals, e.g. when a victim dies later."""
        self.killed = killed
        self.injured = injured

    def amend(
        self,
        *,
        occurred_at: datetime,
        corrections: dict[str, Any],
        police_zone_code: str,
        reason: str,
    ) -> None:
        """Correct facts of the incident; `corrections` maps amendable field names to values."""
        unknown = sorted(set(corrections) - AMENDABLE_FIELDS)
        if unknown or not corrections:
            raise InvalidArgumentError(
                [FieldViolation("update_mask", f"cannot amend {unknown or 'nothing'}")]
            )
        self._amend(
            occurred_at=occurred_at,
            corrections=corrections,
            police_zone_code=police_zone_code,
            reason=reason,
        )

    @event("IncidentAmended")
    def _amend(
        self,
        *,
        occurred_at: datetime,
        corrections: dict[str, Any],
        police_zone_code: str,
        reason: str,
    ) -> None:
        corrected_time = corrections.get("occurred_at", self.occurred_at)
        if corrected_time > self.reported_at:
            raise InvalidArgumentError(
                [
                    FieldViolation(
                        "correction.occurred_at",
                        "must not be after the incident's reported_at",
                    )
                ]
            )
        for name, value in corrections.items():
            setattr(self, name, tuple(value) if name == "weapons" else value)
        if "municipality_code" in corrections:
            self.police_zone_code = police_zone_code

    @event("AttributedToGang")
    def attribute_to_gang(
        self,
        *,
        occurred_at: datetime,
        gang_id: UUID,
        confidence: float,
        status: AttributionStatus,
        basis: str,
    ) -> None:
        """Attribute the incident to a gang, or revise an existing attribution."""
        self.attributions[gang_id] = Attribution(
            gang_id=gang_id,
            confidence=confidence,
            status=status,
            basis=basis,
            attributed_at=occurred_at,
        )

    @event("AttributionRetracted")
    def retract_attribution(self, *, occurred_at: datetime, gang_id: UUID, reason: str) -> None:
        """Withdraw the current attribution to a gang."""
        if gang_id not in self.attributions:
            msg = f"incident {self.id} is not attributed to gang {gang_id}"
            raise RuleViolatedError("attribution_exists", f"incident/{self.id}", msg)
        del self.attributions[gang_id]

    @event("IncidentLinked")
    def link(
        self, *, occurred_at: datetime, related_incident_id: UUID, kind: LinkKind, note: str
    ) -> None:
        """Relate this incident to another one."""
        if related_incident_id == self.id:
            msg = "an incident cannot be linked to itself"
            raise InvalidArgumentError([FieldViolation("related_incident_id", msg)])
        if related_incident_id in self.links:
            msg = f"incident {self.id} is already linked to {related_incident_id}"
            raise RuleViolatedError("link_is_new", f"incident/{self.id}", msg)
        self.links[related_incident_id] = IncidentLink(related_incident_id, kind, note)

    def erase_personal_data(self, *, occurred_at: datetime, reason: str) -> None:
        """Record that the personal data about participants (the names and references of
        witness sources) was erased; the application destroys their key with this event.

        Erasure is final: erasing again is a broken rule (`personal_data_not_erased`).
        """
        if getattr(self, "personal_data_erased", False):
            msg = f"the personal data of incident {self.id} was already erased"
            raise RuleViolatedError("personal_data_not_erased", f"incident/{self.id}", msg)
        self._erase_personal_data(occurred_at=occurred_at, reason=reason)

    @event("PersonalDataErased")
    def _erase_personal_data(self, *, occurred_at: datetime, reason: str) -> None:
        self.personal_data_erased = True
