"""Incidents: report shootings and record what is learned about them afterwards."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from service.app.base import ApplicationService
from service.app.commands import (
    AmendIncident,
    AttributeToGang,
    ErasePersonalData,
    LinkIncidents,
    ReportShooting,
    RetractAttribution,
    ReviseCasualties,
)
from service.app.results import RecordedEvent, WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.app.validation import MAX_LONG_TEXT, Violations
from service.app.writer import Decision
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.values import GeoPoint, Source, Weapon
from service.store.field_cipher import is_sealed


class Incidents(ApplicationService):
    """Application service for incidents."""

    async def report_shooting(self, command: ReportShooting, context: WriteContext) -> WriteResult:
        """Record a new shooting incident."""
        return await self._write(command, context, self.shooting_decision(command, context))

    def shooting_decision(self, command: ReportShooting, context: WriteContext) -> Decision:
        """Check a shooting report (InvalidArgumentError); return the decision that records it."""
        now = self._now()
        reported_at = command.reported_at or now
        v = Violations()
        v.not_future(command.occurred_at, "occurred_at", now)
        v.not_future(reported_at, "reported_at", now)
        if _aware(command.occurred_at) and _aware(reported_at):
            v.check(
                command.occurred_at <= reported_at, "occurred_at", "must not be after reported_at"
            )
        v.municipality(command.municipality_code, "municipality_code", self._catalog)
        self._check_place(v, "", command.address, command.location)
        self._check_weapons(v, "weapons", command.weapons)
        v.count(command.assailant_count, "assailant_count")
        v.count(command.killed, "killed")
        v.count(command.injured, "injured")
        v.text(command.description, "description", MAX_LONG_TEXT)
        self._check_sources(v, command.sources)
        v.text(command.external_reference, "external_reference")
        v.raise_if_any()
        zone = self._catalog.zone_of(command.municipality_code)

        personal_data = self._deps.personal_data

        def decide(unit: UnitOfWork) -> Incident:
            incident_id = uuid4()
            incident = Incident.report(
                incident_id,
                occurred_at=command.occurred_at,
                occurred_at_precision=command.occurred_at_precision,
                reported_at=reported_at,
                municipality_code=command.municipality_code,
                police_zone_code=zone,
                address=command.address,
                location=command.location,
                weapons=command.weapons,
                assailant_count=command.assailant_count,
                assailants_masked=command.assailants_masked,
                killed=command.killed,
                injured=command.injured,
                drug_nexus=command.drug_nexus,
                description=command.description,
                sources=personal_data.seal_sources(unit, incident_id, command.sources),
                external_reference=command.external_reference,
            )
            return unit.add(incident, context.expected_version)

        return decide

    async def revise_casualties(
        self, command: ReviseCasualties, context: WriteContext
    ) -> WriteResult:
        """Record new casualty totals."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.count(command.killed, "killed")
        v.count(command.injured, "injured")
        v.required(command.reason, "reason")
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Incident:
            incident = unit.get(Incident, command.incident_id, context.expected_version)
            incident.revise_casualties(
                occurred_at=occurred_at,
                killed=command.killed,
                injured=command.injured,
                reason=command.reason,
            )
            return incident

        return await self._write(command, context, decide)

    async def amend(self, command: AmendIncident, context: WriteContext) -> WriteResult:
        """Record corrections of an incident's facts."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        now = self._now()
        corrections = dict(command.corrections)
        v.required(command.reason, "reason")
        v.check(bool(corrections), "update_mask", "must name at least one field to correct")
        prefix = "correction."
        if "occurred_at" in corrections:
            corrected = corrections["occurred_at"]
            v.check(isinstance(corrected, datetime), prefix + "occurred_at", "is required")
            if isinstance(corrected, datetime):
                v.not_future(corrected, prefix + "occurred_at", now)
        if "municipality_code" in corrections:
            v.municipality(
                str(corrections["municipality_code"]),
                prefix + "municipality_code",
                self._catalog,
            )
        location = corrections.get("location")
        self._check_place(
            v,
            prefix,
            str(corrections.get("address", "")),
            location if isinstance(location, GeoPoint) else None,
        )
        if "weapons" in corrections:
            weapons = corrections["weapons"]
            if v.check(
                isinstance(weapons, tuple | list)
                and all(isinstance(weapon, Weapon) for weapon in weapons),
                prefix + "weapons",
                "must be a list of weapons",
            ):
                corrections["weapons"] = tuple(weapons)  # type: ignore[arg-type]
                self._check_weapons(v, prefix + "weapons", corrections["weapons"])  # type: ignore[arg-type]
        count = corrections.get("assailant_count", 0)
        if isinstance(count, int):
            v.count(count, prefix + "assailant_count")
        v.text(str(corrections.get("description", "")), prefix + "description", MAX_LONG_TEXT)
        v.raise_if_any()
        municipality = corrections.get("municipality_code")
        zone = self._catalog.zone_of(str(municipality)) if municipality else ""

        def decide(unit: UnitOfWork) -> Incident:
            incident = unit.get(Incident, command.incident_id, context.expected_version)
            incident.amend(
                occurred_at=occurred_at,
                corrections=corrections,
                police_zone_code=zone,
                reason=command.reason,
            )
            return incident

        return await self._write(command, context, decide)

    async def attribute_to_gang(
        self, command: AttributeToGang, context: WriteContext
    ) -> WriteResult:
        """Attribute an incident to a registered gang."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.check(0.0 <= command.confidence <= 1.0, "confidence", "must be a number from 0 to 1")
        v.required(command.basis, "basis", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Incident:
            incident = unit.get(Incident, command.incident_id, context.expected_version)
            unit.get(Gang, command.gang_id)
            incident.attribute_to_gang(
                occurred_at=occurred_at,
                gang_id=command.gang_id,
                confidence=command.confidence,
                status=command.status,
                basis=command.basis,
            )
            return incident

        return await self._write(command, context, decide)

    async def retract_attribution(
        self, command: RetractAttribution, context: WriteContext
    ) -> WriteResult:
        """Withdraw an attribution."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.required(command.reason, "reason", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Incident:
            incident = unit.get(Incident, command.incident_id, context.expected_version)
            incident.retract_attribution(
                occurred_at=occurred_at, gang_id=command.gang_id, reason=command.reason
            )
            return incident

        return await self._write(command, context, decide)

    async def link(self, command: LinkIncidents, context: WriteContext) -> WriteResult:
        """Relate two incidents; the link is recorded on both."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.check(
            command.related_incident_id != command.incident_id,
            "related_incident_id",
            "must differ from incident_id",
        )
        v.text(command.note, "note", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Incident:
            incident = unit.get(Incident, command.incident_id, context.expected_version)
            related = unit.get(Incident, command.related_incident_id)
            incident.link(
                occurred_at=occurred_at,
                related_incident_id=related.id,
                kind=command.kind,
                note=command.note,
            )
            related.link(
                occurred_at=occurred_at,
                related_incident_id=incident.id,
                kind=command.kind.inverse(),
                note=command.note,
            )
            return incident

        return await self._write(command, context, decide)

    async def erase_personal_data(
        self, command: ErasePersonalData, context: WriteContext
    ) -> WriteResult:
        """Record the erasure of an incident's personal data and delete its subject key in
        the same transaction: its witness sources read as erased from then on."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.required(command.reason, "reason", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Incident:
            incident = unit.get(Incident, command.incident_id, context.expected_version)
            incident.erase_personal_data(occurred_at=occurred_at, reason=command.reason)
            unit.erased_subjects.append(incident.id)
            return incident

        return await self._write(command, context, decide)

    async def get(self, incident_id: UUID) -> tuple[Incident, list[RecordedEvent]]:
        """Return an incident and its history, personal data revealed (or marked erased)."""
        personal_data = self._deps.personal_data

        def reveal(incident: Incident, history: list[RecordedEvent]) -> list[RecordedEvent]:
            personal_data.reveal_incident(incident)
            return personal_data.reveal_events(history)

        return await self._read(Incident, incident_id, reveal)

    def _check_place(
        self, v: Violations, prefix: str, address: str, location: GeoPoint | None
    ) -> None:
        v.text(address, prefix + "address")
        v.location(location, prefix + "location", self._catalog)

    @staticmethod
    def _check_weapons(v: Violations, field: str, weapons: tuple[Weapon, ...]) -> None:
        for index, weapon in enumerate(weapons):
            v.count(weapon.count, f"{field}[{index}].count", minimum=1)
        v.distinct([weapon.kind for weapon in weapons], field)

    @staticmethod
    def _check_sources(v: Violations, sources: tuple[Source, ...]) -> None:
        for index, source in enumerate(sources):
            v.required(source.name, f"sources[{index}].name")
            v.text(source.reference, f"sources[{index}].reference", MAX_LONG_TEXT)
            for name, value in (("name", source.name), ("reference", source.reference)):
                v.check(
                    not is_sealed(value),
                    f"sources[{index}].{name}",
                    "must not start with 'pd1:', the registry's prefix for sealed personal data",
                )


def _aware(value: datetime) -> bool:
    return value.utcoffset() is not None
