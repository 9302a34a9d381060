"""The incidents read model as a pure fold: the current state of one incident, event by event.

Each event replaces the incident's state with the next one, so after a casualty revision, an
amendment or a retraction the state equals that of a log which had the corrected facts from the
start (only `version`, `position` and `link_count` count the events themselves).

Confidence bands: low below 0.5, medium from 0.5 up to (not including) 0.8, high from 0.8.
An incident is confirmed when any current attribution is confirmed, suspected when it has only
suspected ones, and unattributed without any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from projections.base import Recorded
from projections.statistics import period_keys
from service.store.transcoding import stored_time

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
    return LocalTime(*local_values(moment, zone))


def local_values(moment: datetime, zone: ZoneInfo) -> tuple[str, str, str, str, int, int]:
    """The fields of `local_time(moment, zone)`, in their order, as a plain tuple (faster)."""
    local = moment.astimezone(zone)
    keys = period_keys(local, zone)  # already in `zone`: no second conversion
    return keys["day"], keys["week"], keys["month"], keys["year"], local.hour, local.isoweekday()


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


def build_state(fields: dict[str, Any]) -> IncidentState:
    """An IncidentState from a dict of all its fields (which it keeps).

    Faster than IncidentState(**fields): the frozen dataclass's __init__ sets each field
    through object.__setattr__, several times slower, and a rebuild makes a state per incident
    and batch. Safe while IncidentState has no defaults and no __post_init__.
    """
    state: IncidentState = object.__new__(IncidentState)
    object.__setattr__(state, "__dict__", fields)
    return state


# --- Reading event attributes ---------------------------------------------------------------
# A batch reads each event's stored payload (plain JSON, see Recorded.payload), far cheaper
# than decoding the domain event; the few values of registered types it needs are converted
# here. Decoded attributes (events stored by an older class version, or built in tests) go
# through the same helpers, which accept either form.


def _fields(recorded: Recorded) -> Mapping[str, Any]:
    """The event's attributes: its stored payload, or the decoded event's."""
    payload = recorded.payload()
    return payload if payload is not None else vars(recorded.event)


def _time(value: Any) -> datetime:
    """A decoded datetime, or one in its stored form."""
    return value if isinstance(value, datetime) else stored_time(value)


def _uuid(value: Any) -> UUID:
    """A decoded UUID, or one in its stored form."""
    return value if isinstance(value, UUID) else UUID(value["_data_"])


def _value(member: Any) -> str:
    """An enumeration member's value: decoded, in its stored form, or already plain."""
    if type(member) is dict:
        return str(member["_data_"])
    return str(member.value) if isinstance(member, Enum) else str(member)


def weapon_pairs(weapons: Iterable[Any]) -> tuple[tuple[str, int], ...]:
    """Weapons (decoded or stored) as (kind, count) pairs ordered by kind; a kind twice sums."""
    counts: dict[str, int] = {}
    for weapon in weapons:
        if type(weapon) is dict:
            data = weapon["_data_"]
            kind, count = _value(data["kind"]), int(data["count"])
        else:
            kind, count = _value(weapon.kind), int(weapon.count)
        counts[kind] = counts.get(kind, 0) + count
    return tuple(sorted(counts.items()))


# --- The fold -------------------------------------------------------------------------------


class _Draft:
    """An incident's state while events fold onto it: its fields changed in place, frozen once.

    Most incidents of a batch get one or two events; a new frozen state per event would cost
    more than reading the events.
    """

    __slots__ = ("fields", "gangs")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        """IncidentState's fields, by name."""
        self.gangs: dict[UUID, GangAttribution] | None = None
        """The current attributions by gang, once an event changed them."""

    @classmethod
    def of(cls, state: IncidentState) -> _Draft:
        """A draft starting from a state."""
        return cls(dict(vars(state)))

    @classmethod
    def reported(cls, recorded: Recorded) -> _Draft:
        """A new incident's draft, from its ShootingReported."""
        fields = _fields(recorded)
        return cls(
            {
                "incident_id": recorded.originator_id,
                "occurred_at": _time(fields["occurred_at"]),
                "reported_at": _time(fields["reported_at"]),
                "municipality_code": fields["municipality_code"],
                "police_zone_code": fields["police_zone_code"],
                "killed": int(fields["killed"]),
                "injured": int(fields["injured"]),
                "weapons": weapon_pairs(fields["weapons"]),
                "address": fields["address"],
                "description": fields["description"],
                "drug_nexus": bool(fields["drug_nexus"]),
                "attributions": (),
                "link_count": 0,
                "version": recorded.originator_version,
                "position": recorded.position,
            }
        )

    def state(self) -> IncidentState:
        """The state the events folded so far give."""
        fields = dict(self.fields)
        if self.gangs is not None:
            fields["attributions"] = _attributions(self.gangs.values())
        return build_state(fields)

    def follow(self, change: Callable[[_Draft, Recorded], None], recorded: Recorded) -> None:
        """Apply a later event of the incident (its `change`), and count it."""
        change(self, recorded)
        self.fields["version"] = recorded.originator_version
        self.fields["position"] = recorded.position

    def current_gangs(self) -> dict[UUID, GangAttribution]:
        """The current attributions by gang, to change."""
        if self.gangs is None:
            self.gangs = {a.gang_id: a for a in self.fields["attributions"]}
        return self.gangs


def _attributions(values: Iterable[GangAttribution]) -> tuple[GangAttribution, ...]:
    return tuple(sorted(values, key=lambda a: str(a.gang_id)))


def _revised(draft: _Draft, recorded: Recorded) -> None:
    fields = _fields(recorded)
    draft.fields["killed"] = int(fields["killed"])
    draft.fields["injured"] = int(fields["injured"])


def _amended(draft: _Draft, recorded: Recorded) -> None:
    fields = _fields(recorded)
    corrections: Mapping[str, Any] = fields["corrections"]
    state = draft.fields
    if "occurred_at" in corrections:
        state["occurred_at"] = _time(corrections["occurred_at"])
    for name in ("address", "description"):
        if name in corrections:
            state[name] = corrections[name]
    if "drug_nexus" in corrections:
        state["drug_nexus"] = bool(corrections["drug_nexus"])
    if "weapons" in corrections:
        state["weapons"] = weapon_pairs(corrections["weapons"])
    if "municipality_code" in corrections:
        state["municipality_code"] = corrections["municipality_code"]
        state["police_zone_code"] = fields["police_zone_code"]


def _attributed(draft: _Draft, recorded: Recorded) -> None:
    fields = _fields(recorded)
    gang_id = _uuid(fields["gang_id"])
    draft.current_gangs()[gang_id] = GangAttribution(
        gang_id=gang_id,
        confidence=float(fields["confidence"]),
        status=_value(fields["status"]),
        attributed_at=_time(fields["occurred_at"]),
    )


def _retracted(draft: _Draft, recorded: Recorded) -> None:
    draft.current_gangs().pop(_uuid(_fields(recorded)["gang_id"]), None)


def _linked(draft: _Draft, _recorded: Recorded) -> None:
    draft.fields["link_count"] += 1


_LATER: dict[str, Callable[[_Draft, Recorded], None]] = {
    "CasualtiesRevised": _revised,
    "IncidentAmended": _amended,
    "AttributedToGang": _attributed,
    "AttributionRetracted": _retracted,
    "IncidentLinked": _linked,
}
"""How each event after the report changes an incident's state (before version and position)."""


def fold(state: IncidentState | None, recorded: Recorded) -> IncidentState | None:
    """The incident's state after `recorded` (None for events of an incident never reported)."""
    if recorded.event_type == "ShootingReported":
        return _Draft.reported(recorded).state()
    change = _LATER.get(recorded.event_type)
    if state is None or change is None:
        return state
    draft = _Draft.of(state)
    draft.follow(change, recorded)
    return draft.state()


def fold_batch(
    known: Mapping[UUID, IncidentState], events: Iterable[Recorded]
) -> dict[UUID, IncidentState]:
    """Fold events (in log order) onto known states; return the states that changed."""
    drafts: dict[UUID, _Draft] = {}
    for recorded in events:
        incident = recorded.originator_id
        if recorded.event_type == "ShootingReported":
            drafts[incident] = _Draft.reported(recorded)
            continue
        change = _LATER.get(recorded.event_type)
        if change is None:
            continue
        draft = drafts.get(incident)
        if draft is None:
            state = known.get(incident)
            if state is None:  # an incident never reported
                continue
            draft = drafts[incident] = _Draft.of(state)
        draft.follow(change, recorded)
    changed: dict[UUID, IncidentState] = {}
    for incident, draft in drafts.items():
        after = draft.state()
        if after != known.get(incident):
            changed[incident] = after
    return changed
