"""The incidents read model as a pure fold: the current state of one incident, event by event.

Each event replaces the incident's state with the next one, so after a casualty revision, an
amendment or a retraction the state equals that of a log which had the corrected facts from the
start (only `version`, `position` and `link_count` count the events themselves).

Confidence bands: low below 0.5, medium from 0.5 up to (not including) 0.8, high from 0.8.
An incident is confirmed when any current attribution is confirmed, suspected when it has only
suspected ones, and unattributed without any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from projections.base import Recorded
from projections.statistics import period_keys

NAME = "incidents"
EVENT_TYPES = (
    "ShootingReported",
    "CasualtiesRevised",
    "IncidentAmended",
    "AttributedToGang",
    "AttributionRetracted",
    "IncidentLinked",
)

UNATTRIBUTED, SUSPECTED, CONFIRMED = "unattributed", "suspected", "confirmed"
ATTRIBUTION_STATUSES = (UNATTRIBUTED, SUSPECTED, CONFIRMED)
LOW, MEDIUM, HIGH = "low", "medium", "high"
CONFIDENCE_BANDS = (LOW, MEDIUM, HIGH)
MEDIUM_FROM = 0.5
"""The lowest confidence of the medium band."""
HIGH_FROM = 0.8
"""The lowest confidence of the high band."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def confidence_band(confidence: float) -> str:
    """The band of a confidence: low < 0.5 <= medium < 0.8 <= high."""
    if confidence >= HIGH_FROM:
        return HIGH
    if confidence >= MEDIUM_FROM:
        return MEDIUM
    return LOW


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch (UTC): ordered like the instants, exactly."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The UTC instant `micros` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class LocalTime:
    """Where an instant falls in the catalog's time zone."""

    day: str
    week: str
    month: str
    year: str
    hour: int
    weekday: int
    """ISO weekday: 1 is Monday, 7 is Sunday."""


def local_time(moment: datetime, zone: ZoneInfo) -> LocalTime:
    """The local day, ISO week, month, year, hour and weekday of `moment` in `zone`."""
    keys = period_keys(moment, zone)
    local = moment.astimezone(zone)
    return LocalTime(
        day=keys["day"],
        week=keys["week"],
        month=keys["month"],
        year=keys["year"],
        hour=local.hour,
        weekday=local.isoweekday(),
    )


@dataclass(frozen=True)
class GangAttribution:
    """A current attribution of an incident to a gang."""

    gang_id: UUID
    confidence: float
    status: str
    attributed_at: datetime

    @property
    def band(self) -> str:
        """The confidence band."""
        return confidence_band(self.confidence)


@dataclass(frozen=True)
class IncidentState:
    """The current state of one incident."""

    incident_id: UUID
    occurred_at: datetime
    reported_at: datetime
    municipality_code: str
    police_zone_code: str
    killed: int
    injured: int
    weapons: tuple[tuple[str, int], ...]
    """(kind, count) pairs ordered by kind, each kind once."""
    address: str
    description: str
    drug_nexus: bool
    attributions: tuple[GangAttribution, ...]
    """Ordered by gang id."""
    link_count: int
    version: int
    position: int

    @property
    def attribution_status(self) -> str:
        """Unattributed, suspected, or confirmed (when any attribution is confirmed)."""
        if not self.attributions:
            return UNATTRIBUTED
        if any(a.status == CONFIRMED for a in self.attributions):
            return CONFIRMED
        return SUSPECTED

    @property
    def strongest_band(self) -> str:
        """The band of the highest confidence among the attributions ("" without any)."""
        if not self.attributions:
            return ""
        return confidence_band(max(a.confidence for a in self.attributions))


def _value(member: Any) -> str:
    return str(member.value) if isinstance(member, Enum) else str(member)


def weapon_pairs(weapons: Iterable[Any]) -> tuple[tuple[str, int], ...]:
    """Weapons as (kind, count) pairs ordered by kind; a kind given twice is summed."""
    counts: Counter[str] = Counter()
    for weapon in weapons:
        counts[_value(weapon.kind)] += int(weapon.count)
    return tuple(sorted(counts.items()))


def _attributions(values: Iterable[GangAttribution]) -> tuple[GangAttribution, ...]:
    return tuple(sorted(values, key=lambda a: str(a.gang_id)))


def _reported(recorded: Recorded) -> IncidentState:
    event = recorded.event
    return IncidentState(
        incident_id=recorded.originator_id,
        occurred_at=event.occurred_at,
        reported_at=event.reported_at,
        municipality_code=event.municipality_code,
        police_zone_code=event.police_zone_code,
        killed=int(event.killed),
        injured=int(event.injured),
        weapons=weapon_pairs(event.weapons),
        address=event.address,
        description=event.description,
        drug_nexus=bool(event.drug_nexus),
        attributions=(),
        link_count=0,
        version=recorded.originator_version,
        position=recorded.position,
    )


def _amended(state: IncidentState, event: Any) -> IncidentState:
    corrections: dict[str, Any] = event.corrections
    changes: dict[str, Any] = {}
    for name in ("occurred_at", "address", "description"):
        if name in corrections:
            changes[name] = corrections[name]
    if "drug_nexus" in corrections:
        changes["drug_nexus"] = bool(corrections["drug_nexus"])
    if "weapons" in corrections:
        changes["weapons"] = weapon_pairs(corrections["weapons"])
    if "municipality_code" in corrections:
        changes["municipality_code"] = corrections["municipality_code"]
        changes["police_zone_code"] = event.police_zone_code
    return replace(state, **changes)


def _attributed(state: IncidentState, event: Any) -> IncidentState:
    current = {a.gang_id: a for a in state.attributions}
    current[event.gang_id] = GangAttribution(
        gang_id=event.gang_id,
        confidence=float(event.confidence),
        status=_value(event.status),
        attributed_at=event.occurred_at,
    )
    return replace(state, attributions=_attributions(current.values()))


def _retracted(state: IncidentState, event: Any) -> IncidentState:
    kept = (a for a in state.attributions if a.gang_id != event.gang_id)
    return replace(state, attributions=_attributions(kept))


def fold(state: IncidentState | None, recorded: Recorded) -> IncidentState | None:
    """The incident's state after `recorded` (None for events of an incident never reported)."""
    kind = recorded.event_type
    if kind == "ShootingReported":
        return _reported(recorded)
    if state is None or kind not in EVENT_TYPES:
        return state
    event = recorded.event
    if kind == "CasualtiesRevised":
        state = replace(state, killed=int(event.killed), injured=int(event.injured))
    elif kind == "IncidentAmended":
        state = _amended(state, event)
    elif kind == "AttributedToGang":
        state = _attributed(state, event)
    elif kind == "AttributionRetracted":
        state = _retracted(state, event)
    else:  # IncidentLinked
        state = replace(state, link_count=state.link_count + 1)
    return replace(state, version=recorded.originator_version, position=recorded.position)


def fold_batch(
    known: dict[UUID, IncidentState], events: Iterable[Recorded]
) -> dict[UUID, IncidentState]:
    """Fold events (in log order) onto known states; return the states that changed."""
    current = dict(known)
    changed: dict[UUID, IncidentState] = {}
    for recorded in events:
        after = fold(current.get(recorded.originator_id), recorded)
        if after is not None and after != current.get(recorded.originator_id):
            current[recorded.originator_id] = after
            changed[recorded.originator_id] = after
    return changed
