"""Waves: record the violence waves the waves projection finds, each exactly once."""

from __future__ import annotations

from uuid import UUID

from service.app.base import ApplicationService, ServiceDeps
from service.app.commands import RecordWave
from service.app.results import WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.app.validation import Violations
from service.domain.errors import RegistryError, RuleViolatedError
from service.domain.incident import Incident
from service.domain.wave import AREA_KINDS, ViolenceWave, WaveRule, wave_id

ACTOR = "projection:waves"
"""The actor stamped on WaveDetected events: the registry itself, not a person."""

_FACTS = (
    "area_kind",
    "area_code",
    "incident_ids",
    "municipality_codes",
    "first_occurred_at",
    "last_occurred_at",
    "min_shootings",
    "window_hours",
)
"""What a wave is. Its trigger position is left out: it is a position in the log the wave was
first detected in, and an imported log has other positions."""


def request_id(wave_id: UUID) -> str:
    """The idempotency key of a wave's recording, derived from the wave's id."""
    return f"wave-detected:{wave_id}"


class _AlreadyRecordedError(RegistryError):
    """Raised by a decision when the wave's stream exists without a record of its request."""


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
        A wave that is in the log without a record of its request — it was imported, or
        recorded by another registry whose log this one imported — is recorded already too,
        when its facts are the same.
        """
        self._check(command)
        wave = wave_id(
            area_kind=command.area_kind,
            area_code=command.area_code,
            incident_ids=command.incident_ids,
            min_shootings=command.min_shootings,
            window_hours=command.window_hours,
            trigger_stream_id=command.trigger_incident_id,
            trigger_version=command.trigger_version,
        )
        context = WriteContext(request_id=request_id(wave), actor=ACTOR)

        def decide(unit: UnitOfWork) -> ViolenceWave:
            if unit.find(ViolenceWave, wave) is not None:
                raise _AlreadyRecordedError(str(wave))
            for incident_id in command.incident_ids:
                unit.get(Incident, incident_id)
            detected = ViolenceWave(
                id=wave,
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
            return unit.add(detected, expected_version=0)

        try:
            return await self._write(command, context, decide)
        except _AlreadyRecordedError:
            return await self._recorded(command, wave)

    def _check(self, command: RecordWave) -> None:
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
        v.check(
            command.trigger_incident_id in command.incident_ids,
            "trigger_incident_id",
            "must be one of the wave's incidents",
        )
        v.count(command.trigger_version, "trigger_version", 1)
        v.count(command.trigger_position, "trigger_position", 1)
        v.aware(command.first_occurred_at, "first_occurred_at")
        v.aware(command.last_occurred_at, "last_occurred_at")
        v.raise_if_any()

    async def _recorded(self, command: RecordWave, wave: UUID) -> WriteResult:
        """The result of the wave already in the log, as a replay, if it has the same facts."""
        existing, history = await self._read(ViolenceWave, wave)
        differing = [name for name in _FACTS if getattr(existing, name) != getattr(command, name)]
        if differing:
            msg = (
                f"violence wave {wave} is in the log with other facts "
                f"({', '.join(differing)}) than the wave detected now"
            )
            raise RuleViolatedError("wave_facts_match", f"violence_wave/{wave}", msg)
        return WriteResult(existing.id, existing.version, history[-1].position, replayed=True)
