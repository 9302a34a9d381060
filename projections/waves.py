"""Violence waves: which shootings of an area form a wave, decided one incident change at a time.

The rule, for N shootings within T hours (README, "Violence waves"). An incident's facts are
its area (municipality or police zone, as the rule says) and the time it occurred, as last
reported or amended. A wave's span runs from its earliest to its latest member, and a time is
*near* a span when it lies at most T hours before or after it. When an incident is reported, or
amended in time or place:

1. if it is in a wave and moved to another area, or its time is no longer near the span of the
   wave's other members, it leaves the wave;
2. if it is in no wave ("free") and near the span of a wave of its area, it joins that wave
   (the earliest-starting one);
3. otherwise, if some window of T hours that holds it holds N free incidents of its area, those
   of the earliest such window form a new wave: it is *detected* (and recorded in the log);
4. a wave whose span changed takes in every free incident of its area near its span, until
   there is none.

Boundaries are inclusive: N shootings exactly T hours apart are a wave. After each change no
window of T hours holds N free incidents of one area, so a new wave always holds the incident
whose change completed it, and what is detected depends only on the log up to that event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from service.domain.wave import WaveRule, wave_id
from service.store.transcoding import stored_time

NAME = "waves"
EVENT_TYPES = ("ShootingReported", "IncidentAmended")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
MICROS_PER_HOUR = 3_600_000_000


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware datetime."""
    return (moment - _EPOCH) // _MICROSECOND


def _time(value: Any) -> datetime:
    """A decoded datetime, or one in its stored form."""
    return value if isinstance(value, datetime) else stored_time(value)


def moment(value: int) -> datetime:
    """The UTC datetime of a number of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


@dataclass
class Fact:
    """What the rule knows of one incident: where and when, and the wave it belongs to."""

    area: str
    at: int
    """When it occurred, in microseconds since the epoch."""
    municipality: str
    wave: UUID | None = None


@dataclass
class Wave:
    """A wave held in memory: its area and current members."""

    wave_id: UUID
    area: str
    members: set[UUID] = field(default_factory=set)


@dataclass(frozen=True)
class Detection:
    """A new wave: the incidents that formed it (in time order) and the event that completed it.

    The trigger is that incident event: its stream (one of the incidents), version and position.
    """

    wave_id: UUID
    area_code: str
    incident_ids: tuple[UUID, ...]
    municipality_codes: tuple[str, ...]
    first_at: int
    last_at: int
    trigger_incident_id: UUID
    trigger_version: int
    trigger_position: int


class FactSource(Protocol):
    """Where a book finds what it has not loaded yet (the read model's rows)."""

    def incidents(self, incident_ids: Iterable[UUID]) -> dict[UUID, Fact]:
        """The facts of the given incidents, where known."""

    def area(self, area: str, low: int, high: int) -> tuple[dict[UUID, Fact], set[UUID]]:
        """The incidents of `area` that occurred in [low, high], and the waves of `area` whose
        span meets [low, high]."""

    def members(self, wave: UUID) -> dict[UUID, Fact]:
        """Every member of a wave."""


class WaveBook:
    """Incident facts and waves, loaded on demand from a source and changed in memory.

    Without a source the book holds everything there is (as in unit tests). What changed is
    listed in `changed_incidents` and `changed_waves`, for the caller to write back.
    """

    def __init__(self, rule: WaveRule, source: FactSource | None = None) -> None:
        self.rule = rule
        self._window = rule.window_hours * MICROS_PER_HOUR
        self._source = source
        self.facts: dict[UUID, Fact] = {}
        self.waves: dict[UUID, Wave] = {}
        self._by_area: dict[str, set[UUID]] = defaultdict(set)
        self._waves_by_area: dict[str, set[UUID]] = defaultdict(set)
        self._spans: dict[UUID, tuple[int, int] | None] = {}
        self._covered: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._absent: set[UUID] = set()
        self.changed_incidents: set[UUID] = set()
        self.changed_waves: set[UUID] = set()

    # --- events ---------------------------------------------------------------------------

    def apply(
        self,
        incident_id: UUID,
        event_type: str,
        fields: Mapping[str, Any],
        position: int,
        version: int,
    ) -> list[Detection]:
        """Fold one incident event (at log `position`, stream `version`), given its attributes
        (decoded, or a stored payload); return the waves it completed."""
        by_zone = self.rule.area_kind == "police_zone"
        if event_type == "ShootingReported":
            return self.update(
                incident_id,
                area=fields["police_zone_code" if by_zone else "municipality_code"],
                at=micros(_time(fields["occurred_at"])),
                municipality=fields["municipality_code"],
                position=position,
                version=version,
            )
        before = self.fact(incident_id)
        if event_type != "IncidentAmended" or before is None:
            return []
        corrections = fields["corrections"]
        area, municipality = before.area, before.municipality
        if "municipality_code" in corrections:
            municipality = corrections["municipality_code"]
            # The event carries the police zone of the new municipality.
            area = fields["police_zone_code"] if by_zone else municipality
        corrected = corrections.get("occurred_at")
        at = micros(_time(corrected)) if corrected is not None else before.at
        return self.update(
            incident_id,
            area=area,
            at=at,
            municipality=municipality,
            position=position,
            version=version,
        )

    def preload(self, incident_ids: Iterable[UUID], *, new: Iterable[UUID] = ()) -> None:
        """Load the facts of many incidents at once (those of a batch); `new` ones are not
        looked for (they are reported in the batch)."""
        self._absent.update(i for i in new if i not in self.facts)
        wanted = [i for i in incident_ids if i not in self.facts and i not in self._absent]
        if self._source is None or not wanted:
            return
        found = self._source.incidents(wanted)
        self._absent.update(i for i in wanted if i not in found)
        self._adopt(found)

    def fact(self, incident_id: UUID) -> Fact | None:
        """An incident's facts, if it is known."""
        self.preload([incident_id])
        return self.facts.get(incident_id)

    def span(self, wave: UUID) -> tuple[int, int] | None:
        """When a wave's first and last members occurred (None when it has none left)."""
        if wave not in self._spans:
            times = [self.facts[m].at for m in self.waves[wave].members]
            self._spans[wave] = (min(times), max(times)) if times else None
        return self._spans[wave]

    def _changed(self, wave: UUID) -> None:
        """A wave's members or their times changed: write it back, compute its span again."""
        self.changed_waves.add(wave)
        self._spans.pop(wave, None)

    # --- the rule -------------------------------------------------------------------------

    def update(
        self,
        incident_id: UUID,
        *,
        area: str,
        at: int,
        municipality: str,
        position: int,
        version: int,
    ) -> list[Detection]:
        """Give an incident new facts (reported or amended by its event at `version`, log
        `position`); apply the rule."""
        fact = self.fact(incident_id)
        changed_wave: Wave | None = None
        if fact is None:
            fact = Fact(area, at, municipality)
            self.facts[incident_id] = fact
            self._by_area[area].add(incident_id)
            self._absent.discard(incident_id)
        elif (fact.area, fact.at) == (area, at):
            if fact.municipality != municipality:
                fact.municipality = municipality
                self.changed_incidents.add(incident_id)
            return []
        else:
            changed_wave = self._move(incident_id, fact, area, at)
            fact.municipality = municipality
        self.changed_incidents.add(incident_id)
        detections: list[Detection] = []
        if fact.wave is None:
            changed_wave = self._nearest_wave(fact)
            if changed_wave is not None:
                self._join(changed_wave, incident_id)
            else:
                detection = self._detect(incident_id, fact, (position, version))
                if detection is not None:
                    detections.append(detection)
                    changed_wave = self.waves[detection.wave_id]
        if changed_wave is not None:
            self._absorb(changed_wave)
        return detections

    def _move(self, incident_id: UUID, fact: Fact, area: str, at: int) -> Wave | None:
        """Change an incident's area and time; return its wave if it stays in one."""
        wave = self.waves[fact.wave] if fact.wave is not None else None
        if wave is not None:
            self._changed(wave.wave_id)
            others = [self.facts[m].at for m in wave.members if m != incident_id]
            stays = area == fact.area and (not others or self._near(at, min(others), max(others)))
            if not stays:
                wave.members.discard(incident_id)
                fact.wave = None
                wave = None
        if area != fact.area:
            self._by_area[fact.area].discard(incident_id)
            self._by_area[area].add(incident_id)
        fact.area, fact.at = area, at
        return wave

    def _near(self, at: int, start: int, end: int) -> bool:
        return start - self._window <= at <= end + self._window

    def _nearest_wave(self, fact: Fact) -> Wave | None:
        """The earliest-starting wave of the incident's area whose span it is near."""
        self._ensure(fact.area, fact.at - self._window, fact.at + self._window)
        near = []
        for wave in self._waves_by_area[fact.area]:
            span = self.span(wave)
            if span is not None and self._near(fact.at, *span):
                near.append((span[0], str(wave)))
        return self.waves[UUID(min(near)[1])] if near else None

    def _join(self, wave: Wave, incident_id: UUID) -> None:
        wave.members.add(incident_id)
        self.facts[incident_id].wave = wave.wave_id
        self.changed_incidents.add(incident_id)
        self._changed(wave.wave_id)

    def _free(self, area: str, low: int, high: int) -> list[tuple[int, str, UUID]]:
        """Free incidents of `area` that occurred in [low, high], in time order (then id)."""
        found = []
        for incident_id in self._by_area[area]:
            fact = self.facts[incident_id]
            if fact.wave is None and low <= fact.at <= high:
                found.append((fact.at, str(incident_id), incident_id))
        return sorted(found)

    def _detect(self, incident_id: UUID, fact: Fact, trigger: tuple[int, int]) -> Detection | None:
        """A new wave holding the incident, from the earliest window of T hours with N free."""
        free = self._free(fact.area, fact.at - self._window, fact.at + self._window)
        for start, _, _ in free:
            if start > fact.at:
                break
            window = [item for item in free if start <= item[0] <= start + self._window]
            if len(window) >= self.rule.min_shootings:
                return self._found(incident_id, fact.area, window, trigger)
        return None

    def _found(
        self,
        trigger: UUID,
        area: str,
        window: list[tuple[int, str, UUID]],
        event: tuple[int, int],
    ) -> Detection:
        """A new wave of the incidents in `window`, completed by `trigger`'s event at
        (position, version)."""
        ids = tuple(incident_id for _, _, incident_id in window)
        assert trigger in ids
        position, version = event
        new_id = wave_id(
            area_kind=self.rule.area_kind,
            area_code=area,
            incident_ids=ids,
            min_shootings=self.rule.min_shootings,
            window_hours=self.rule.window_hours,
            trigger_stream_id=trigger,
            trigger_version=version,
        )
        wave = Wave(new_id, area)
        self.waves[new_id] = wave
        self._waves_by_area[area].add(new_id)
        for incident_id in ids:
            self._join(wave, incident_id)
        return Detection(
            wave_id=new_id,
            area_code=area,
            incident_ids=ids,
            municipality_codes=tuple(sorted({self.facts[i].municipality for i in ids})),
            first_at=window[0][0],
            last_at=window[-1][0],
            trigger_incident_id=trigger,
            trigger_version=version,
            trigger_position=position,
        )

    def _absorb(self, wave: Wave) -> None:
        """Take in the free incidents near the wave's span, until there are none."""
        while (span := self.span(wave.wave_id)) is not None:
            low, high = span[0] - self._window, span[1] + self._window
            self._ensure(wave.area, low, high)
            free = self._free(wave.area, low, high)
            if not free:
                return
            for _, _, incident_id in free:
                self._join(wave, incident_id)

    # --- loading --------------------------------------------------------------------------

    def _ensure(self, area: str, low: int, high: int) -> None:
        """Make sure every incident of `area` in [low, high], and every wave meeting it, is held."""
        if self._source is None:
            return
        covered = self._covered[area]
        gaps, cursor = [], low
        for start, end in covered:
            if end < cursor:
                continue
            if start > high:
                break
            if start > cursor:
                gaps.append((cursor, start - 1))
            cursor = max(cursor, end + 1)
        if cursor <= high:
            gaps.append((cursor, high))
        for gap_low, gap_high in gaps:
            facts, waves = self._source.area(area, gap_low, gap_high)
            self._adopt(facts)
            for wave in waves:
                self._load_wave(wave, area)
        if gaps:
            self._covered[area] = _merged([*covered, (low, high)])

    def _adopt(self, facts: dict[UUID, Fact]) -> None:
        """Hold loaded facts (those held already may have changed: they win); load their waves."""
        for incident_id, fact in facts.items():
            if incident_id not in self.facts:
                self.facts[incident_id] = fact
                self._by_area[fact.area].add(incident_id)
        for fact in facts.values():
            if fact.wave is not None:
                self._load_wave(fact.wave, fact.area)

    def _load_wave(self, wave: UUID, area: str) -> None:
        if wave in self.waves or self._source is None:
            return
        held = Wave(wave, area)
        self.waves[wave] = held
        self._waves_by_area[area].add(wave)
        members = self._source.members(wave)
        self._adopt(members)
        held.members = {i for i in members if self.facts[i].wave == wave}
        self._spans.pop(wave, None)


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint intervals covering the same whole numbers as `intervals`."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged
