"""Unified police commands, and the per-municipality slot that keeps them exclusive."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from service.domain.base import RegistryAggregate
from service.domain.errors import RuleViolatedError

_SLOT_NAMESPACE = uuid5(NAMESPACE_URL, "incident-registry:municipality-command-slot")


class UnifiedCommand(RegistryAggregate):
    """A temporary single command over several municipalities' police."""

    STREAM_TYPE = "unified_command"

    @event("PoliceCommandUnified")
    def __init__(
        self,
        *,
        occurred_at: datetime,
        municipality_codes: tuple[str, ...],
        police_zone_codes: tuple[str, ...],
        lead_authority: str,
        reason: str,
        starts_at: datetime,
        planned_end_at: datetime | None,
        triggering_incident_ids: tuple[UUID, ...],
    ) -> None:
        self.municipality_codes = tuple(municipality_codes)
        self.police_zone_codes = tuple(police_zone_codes)
        self.lead_authority = lead_authority
        self.reason = reason
        self.starts_at = starts_at
        self.planned_end_at = planned_end_at
        self.triggering_incident_ids = tuple(triggering_incident_ids)
        self.ended_at: datetime | None = None
        self.end_reason = ""

    def tags(self) -> frozenset[str]:
        """The municipalities under the command."""
        return frozenset(f"municipality:{m}" for m in self.municipality_codes)

    @property
    def is_active(self) -> bool:
        """Tell whether the command is still in force."""
        return self.ended_at is None

    @event("UnifiedCommandEnded")
    def end(self, *, occurred_at: datetime, reason: str) -> None:
        """End the command."""
        if not self.is_active:
            msg = f"unified command {self.id} has already ended"
            raise RuleViolatedError("command_is_active", f"unified_command/{self.id}", msg)
        self.ended_at = occurred_at
        self.end_reason = reason


class MunicipalityCommandSlot(RegistryAggregate):
    """Which unified command, if any, a municipality is under.

    One slot per municipality; writing a slot together with the command makes the rule
    "never two active commands over one municipality" a single atomic write, which the
    store's per-stream version check protects against concurrent writers.
    """

    STREAM_TYPE = "municipality_command_slot"

    @staticmethod
    def create_id(municipality_code: str) -> UUID:
        """Derive the slot id from the municipality code."""
        return slot_id(municipality_code)

    @event("MunicipalityCommandSlotCreated")
    def __init__(self, *, occurred_at: datetime, municipality_code: str) -> None:
        self.municipality_code = municipality_code
        self.command_id: UUID | None = None

    def tags(self) -> frozenset[str]:
        """The slot's municipality."""
        return frozenset({f"municipality:{self.municipality_code}"})

    @event("MunicipalityCommandAssigned")
    def assign(self, *, occurred_at: datetime, command_id: UUID) -> None:
        """Place the municipality under a command; it must be free."""
        if self.command_id is not None:
            msg = (
                f"municipality {self.municipality_code} is already under "
                f"active unified command {self.command_id}"
            )
            raise RuleViolatedError(
                "one_active_command_per_municipality",
                f"municipality/{self.municipality_code}",
                msg,
            )
        self.command_id = command_id

    @event("MunicipalityCommandReleased")
    def release(self, *, occurred_at: datetime, command_id: UUID) -> None:
        """Free the municipality from the given command."""
        if self.command_id != command_id:
            msg = f"municipality {self.municipality_code} is not under command {command_id}"
            raise RuleViolatedError(
                "slot_held_by_command", f"municipality/{self.municipality_code}", msg
            )
        self.command_id = None


def slot_id(municipality_code: str) -> UUID:
    """Return the id of a municipality's command slot."""
    return uuid5(_SLOT_NAMESPACE, municipality_code)
