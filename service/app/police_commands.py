"""Police commands: unify municipalities' police under one temporary command, and end it."""

from __future__ import annotations

from uuid import UUID

from service.app.base import ApplicationService
from service.app.commands import EndUnifiedCommand, UnifyPoliceCommand
from service.app.results import RecordedEvent, WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.app.validation import MAX_LONG_TEXT, Violations
from service.domain.command import MunicipalityCommandSlot, UnifiedCommand, slot_id
from service.domain.errors import RuleViolatedError
from service.domain.incident import Incident


class PoliceCommands(ApplicationService):
    """Application service for unified police commands."""

    async def unify(self, command: UnifyPoliceCommand, context: WriteContext) -> WriteResult:
        """Place municipalities and whole police zones under one command.

        The command and every municipality's slot are written in one transaction; a slot
        already held by an active command rejects the whole request.
        """
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        starts_at = command.starts_at or occurred_at
        v.required(command.lead_authority, "lead_authority")
        v.required(command.reason, "reason", MAX_LONG_TEXT)
        v.check(
            bool(command.municipality_codes or command.police_zone_codes),
            "municipality_codes",
            "name at least one municipality or police zone",
        )
        v.municipalities(command.municipality_codes, "municipality_codes", self._catalog)
        for index, zone in enumerate(command.police_zone_codes):
            v.check(
                zone in self._catalog.police_zones,
                f"police_zone_codes[{index}]",
                f"unknown police zone {zone!r} in area catalog {self._catalog.catalog_id!r}",
            )
        if command.planned_end_at is not None:
            v.check(
                command.planned_end_at > starts_at,
                "planned_end_at",
                "must be after starts_at",
            )
        v.distinct(command.triggering_incident_ids, "triggering_incident_ids")
        v.raise_if_any()
        municipalities = self._catalog.expand(command.municipality_codes, command.police_zone_codes)

        def decide(unit: UnitOfWork) -> UnifiedCommand:
            for incident_id in command.triggering_incident_ids:
                unit.get(Incident, incident_id)
            # The command is touched first, so its event precedes the slots' in the log.
            unified = unit.add(
                UnifiedCommand(
                    occurred_at=occurred_at,
                    municipality_codes=municipalities,
                    police_zone_codes=tuple(sorted(set(command.police_zone_codes))),
                    lead_authority=command.lead_authority,
                    reason=command.reason,
                    starts_at=starts_at,
                    planned_end_at=command.planned_end_at,
                    triggering_incident_ids=command.triggering_incident_ids,
                ),
                context.expected_version,
            )
            slots = {
                code: unit.find(MunicipalityCommandSlot, slot_id(code)) for code in municipalities
            }
            taken = {
                code: slot.command_id
                for code, slot in slots.items()
                if slot is not None and slot.command_id is not None
            }
            if taken:
                held = ", ".join(f"{code} (command {cmd})" for code, cmd in sorted(taken.items()))
                msg = f"municipalities already under an active unified command: {held}"
                raise RuleViolatedError(
                    "one_active_command_per_municipality",
                    "municipalities/" + ",".join(sorted(taken)),
                    msg,
                )
            for code, slot in slots.items():
                held_slot = slot or unit.add(
                    MunicipalityCommandSlot(occurred_at=occurred_at, municipality_code=code)
                )
                held_slot.assign(occurred_at=occurred_at, command_id=unified.id)
            return unified

        return await self._write(command, context, decide)

    async def end(self, command: EndUnifiedCommand, context: WriteContext) -> WriteResult:
        """End an active command and free its municipalities."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.required(command.reason, "reason", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> UnifiedCommand:
            unified = unit.get(UnifiedCommand, command.command_id, context.expected_version)
            unified.end(occurred_at=occurred_at, reason=command.reason)
            for code in unified.municipality_codes:
                slot = unit.get(MunicipalityCommandSlot, slot_id(code))
                slot.release(occurred_at=occurred_at, command_id=unified.id)
            return unified

        return await self._write(command, context, decide)

    async def get(self, command_id: UUID) -> tuple[UnifiedCommand, list[RecordedEvent]]:
        """Return a unified command and its history."""
        return await self._read(UnifiedCommand, command_id)
