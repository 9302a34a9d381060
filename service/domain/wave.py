"""Violence waves: bursts of shootings in one area, recorded when the waves projection finds one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from service.domain.base import RegistryAggregate
from service.domain.errors import RuleViolatedError

AREA_KINDS = ("municipality", "police_zone")
_WAVE_NAMESPACE = uuid5(NAMESPACE_URL, "incident-registry:violence-wave")


@dataclass(frozen=True)
class WaveRule:
    """What a wave is: at least `min_shootings` shootings within `window_hours` in one area."""

    min_shootings: int = 3
    window_hours: int = 72
    area_kind: str = "municipality"

    @property
    def window(self) -> timedelta:
        """The window as a duration."""
        return timedelta(hours=self.window_hours)

    def key(self) -> str:
        """A short stable text naming the rule, e.g. "3 in 72h by municipality"."""
        return f"{self.min_shootings} in {self.window_hours}h by {self.area_kind}"


def wave_id(
    *,
    area_kind: str,
    area_code: str,
    incident_ids: Iterable[UUID],
    min_shootings: int,
    window_hours: int,
    trigger_stream_id: UUID,
    trigger_version: int,
) -> UUID:
    """Derive a wave's id from the rule, the area, its causing incidents and what completed it.

    The trigger is the incident event that completed the wave, named by its stream id and
    version rather than by its log position: detection is deterministic given the log up to
    that event, so a rebuilt or restarted projection derives the same id for the same wave —
    and so does a projection over an imported copy of the log, whose positions differ. A wave
    found under another rule, or formed again later by the same incidents, gets another id.
    """
    members = ",".join(sorted(str(i) for i in incident_ids))
    text = (
        f"{min_shootings}|{window_hours}|{area_kind}:{area_code}|{members}|"
        f"{trigger_stream_id}@{trigger_version}"
    )
    return uuid5(_WAVE_NAMESPACE, text)


class ViolenceWave(RegistryAggregate):
    """A wave of shootings in one area, as detected from the log (a derived fact).

    It is created with `id=wave_id(...)`: the id derives from facts the event does not hold.
    """

    STREAM_TYPE = "violence_wave"

    @event("WaveDetected")
    def __init__(
        self,
        *,
        id: UUID,
        occurred_at: datetime,
        area_kind: str,
        area_code: str,
        incident_ids: tuple[UUID, ...],
        municipality_codes: tuple[str, ...],
        first_occurred_at: datetime,
        last_occurred_at: datetime,
        min_shootings: int,
        window_hours: int,
        trigger_position: int,
    ) -> None:
        subject = f"violence_wave/{area_kind}:{area_code}"
        if len(set(incident_ids)) < min_shootings:
            msg = f"a wave needs at least {min_shootings} distinct shootings"
            raise RuleViolatedError("wave_has_min_shootings", subject, msg)
        if (
            not timedelta(0)
            <= last_occurred_at - first_occurred_at
            <= timedelta(hours=window_hours)
        ):
            msg = f"a wave's shootings occur within {window_hours} hours"
            raise RuleViolatedError("wave_within_window", subject, msg)
        self.area_kind = area_kind
        self.area_code = area_code
        self.incident_ids = tuple(incident_ids)
        self.municipality_codes = tuple(municipality_codes)
        self.first_occurred_at = first_occurred_at
        self.last_occurred_at = last_occurred_at
        self.min_shootings = min_shootings
        self.window_hours = window_hours
        self.trigger_position = trigger_position

    def tags(self) -> frozenset[str]:
        """The municipalities of its shootings (a police zone filter covers them too)."""
        return frozenset(f"municipality:{code}" for code in self.municipality_codes)
