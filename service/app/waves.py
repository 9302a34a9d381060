"""Waves: record the violence waves the waves projection finds, each exactly once."""

from __future__ import annotations

from uuid import UUID

from service.app.base import ApplicationService, ServiceDeps
from service.app.commands import RecordWave
from service.app.results import WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.app.validation import Violations
from service.domain.incident import Incident
from service.domain.wave import AREA_KINDS, ViolenceWave, WaveRule

ACTOR = "projection:waves"
"""The actor stamped on WaveDetected events: the registry itself, not a person."""


def request_id(wave_id: UUID) -> str:
    """The idempotency key of a wave's recording, derived from the wave's id."""
    return f"wave-detected:{wave_id}"


class Waves(ApplicationService):
    """Application service for violence waves: derived facts, written by the waves projection.

    `rule` is the registry's definition of a wave (None: detection is off).
    """

    def __init__(self, deps: ServiceDeps, rule: WaveRule | None) -> None:
        super().__init__(deps)
        self.rule = rule

    async def record(self, command: RecordWave) -> WriteResult:
        """Record a detected wave; recording the same wave again replays the first result.

        The request id derives from the wave's id, itself derived from what detected it, so a
        projection that is rebuilt, or restarted between recording a wave and committing its
        position, finds the wave again and gets the original result instead of a duplicate.
        """
        v = Violations()
        v.check(command.area_kind in AREA_KINDS, "area_kind", f"must be one of {AREA_KINDS}")
        if command.area_kind == "police_zone":
            v.check(
                command.area_code in self._catalog.police_zones,
                "area_code",
                f"unknown police zone {command.area_code!r}",
            )
        else:
            v.municipality(command.area_code, "area_code", self._catalog)
        v.municipalities(command.municipality_codes, "municipality_codes", self._catalog)
        v.distinct(command.incident_ids, "incident_ids")
        v.count(command.min_shootings, "min_shootings", 2)
        v.count(command.window_hours, "window_hours", 1)
        v.count(command.trigger_position, "trigger_position", 1)
        v.aware(command.first_occurred_at, "first_occurred_at")
        v.aware(command.last_occurred_at, "last_occurred_at")
        v.raise_if_any()
        wave_id = ViolenceWave.create_id(
            area_kind=command.area_kind,
            area_code=command.area_code,
            incident_ids=command.incident_ids,
            min_shootings=command.min_shootings,
            window_hours=command.window_hours,
            trigger_position=command.trigger_position,
        )
        context = WriteContext(request_id=request_id(wave_id), actor=ACTOR)

        def decide(unit: UnitOfWork) -> ViolenceWave:
            for incident_id in command.incident_ids:
                unit.get(Incident, incident_id)
            wave = ViolenceWave(
                # Business time: the wave exists from its last shooting on.
                occurred_at=command.last_occurred_at,
                area_kind=command.area_kind,
                area_code=command.area_code,
                incident_ids=command.incident_ids,
                municipality_codes=command.municipality_codes,
                first_occurred_at=command.first_occurred_at,
                last_occurred_at=command.last_occurred_at,
                min_shootings=command.min_shootings,
                window_hours=command.window_hours,
                trigger_position=command.trigger_position,
            )
            return unit.add(wave, expected_version=0)

        return await self._write(command, context, decide)
