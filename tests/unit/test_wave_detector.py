"""The wave rule, one incident change at a time: boundaries, order, amendments, joins.

The book here holds everything in memory (no source); tests/unit/test_waves_model.py checks
that the read model, which loads rows on demand, decides the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

from projections.waves import Detection, WaveBook, micros
from service.areas import load_catalog
from service.domain.wave import WaveRule, wave_id

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST, IXELLES = "21001", "21007", "21009"
MIDI = "5341"  # Anderlecht and Forest are in zone Midi, Ixelles is not
T0 = datetime(2024, 11, 27, 6, 10, tzinfo=UTC)  # a Wednesday morning
RULE = WaveRule()  # 3 shootings within 72 hours, by municipality


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class Log:
    """Feeds incident events to a book, numbering their positions and versions like the log."""

    def __init__(self, rule: WaveRule = RULE) -> None:
        self.book = WaveBook(rule)
        self.position = 0
        self.versions: dict[UUID, int] = {}
        self.detections: list[Detection] = []

    def _fold(self, incident_id: UUID, event_type: str, event: Any) -> list[Detection]:
        self.position += 1
        version = self.versions[incident_id] = self.versions.get(incident_id, 0) + 1
        found = self.book.apply(incident_id, event_type, vars(event), self.position, version)
        self.detections.extend(found)
        return found

    def report(self, when: datetime, municipality: str = ANDERLECHT) -> UUID:
        incident_id = uuid4()
        event = SimpleNamespace(
            occurred_at=when,
            municipality_code=municipality,
            police_zone_code=BRUSSELS.zone_of(municipality),
        )
        self._fold(incident_id, "ShootingReported", event)
        return incident_id

    def amend(
        self, incident_id: UUID, *, when: datetime | None = None, municipality: str = ""
    ) -> list[Detection]:
        corrections: dict[str, Any] = {}
        if when is not None:
            corrections["occurred_at"] = when
        if municipality:
            corrections["municipality_code"] = municipality
        event = SimpleNamespace(
            corrections=corrections,
            police_zone_code=BRUSSELS.zone_of(municipality) if municipality else "",
        )
        return self._fold(incident_id, "IncidentAmended", event)

    def wave_of(self, incident_id: UUID) -> UUID | None:
        return self.book.facts[incident_id].wave

    def members(self, wave: UUID) -> set[UUID]:
        return set(self.book.waves[wave].members)


# --- boundaries ---------------------------------------------------------------------------


def test_exactly_n_shootings_in_exactly_t_hours_are_a_wave():
    log = Log()
    first, second = log.report(hours(0)), log.report(hours(36))
    assert log.detections == []
    third = log.report(hours(72))
    (wave,) = log.detections
    assert wave.incident_ids == (first, second, third)  # in time order
    assert (wave.first_at, wave.last_at) == (micros(hours(0)), micros(hours(72)))
    assert wave.trigger_position == 3
    assert (wave.trigger_incident_id, wave.trigger_version) == (third, 1)
    assert wave.area_code == ANDERLECHT
    assert wave.municipality_codes == (ANDERLECHT,)
    assert wave.wave_id == wave_id(
        area_kind="municipality",
        area_code=ANDERLECHT,
        incident_ids=[first, second, third],
        min_shootings=3,
        window_hours=72,
        trigger_stream_id=third,
        trigger_version=1,
    )
    assert {log.wave_of(i) for i in (first, second, third)} == {wave.wave_id}


def test_a_microsecond_more_than_t_hours_is_no_wave():
    log = Log()
    log.report(hours(0))
    log.report(hours(36))
    log.report(hours(72) + timedelta(microseconds=1))
    assert log.detections == []


def test_n_minus_one_shootings_are_no_wave():
    log = Log(WaveRule(min_shootings=4, window_hours=72))
    for n in range(3):
        log.report(hours(n))
    assert log.detections == []
    log.report(hours(3))
    assert len(log.detections) == 1


def test_shootings_in_other_municipalities_do_not_count():
    log = Log()
    log.report(hours(0), ANDERLECHT)
    log.report(hours(1), FOREST)
    log.report(hours(2), ANDERLECHT)
    assert log.detections == []


def test_by_police_zone_the_municipalities_of_a_zone_count_together():
    log = Log(WaveRule(area_kind="police_zone"))
    log.report(hours(0), ANDERLECHT)
    log.report(hours(1), FOREST)
    log.report(hours(2), IXELLES)
    assert log.detections == []
    log.report(hours(3), ANDERLECHT)
    (wave,) = log.detections
    assert wave.area_code == MIDI
    assert wave.municipality_codes == (ANDERLECHT, FOREST)


# --- order of reporting -------------------------------------------------------------------


def test_shootings_reported_out_of_order_are_placed_by_when_they_occurred():
    log = Log()
    late = log.report(hours(72))
    early = log.report(hours(0))
    assert log.detections == []
    middle = log.report(hours(30))
    (wave,) = log.detections
    assert wave.incident_ids == (early, middle, late)
    assert (wave.first_at, wave.last_at) == (micros(hours(0)), micros(hours(72)))


def test_the_earliest_window_that_holds_n_is_the_wave():
    # Free shootings at 0h and 60h and 120h: a shooting at 70h completes [0h, 72h] first.
    log = Log()
    a = log.report(hours(0))
    b = log.report(hours(60))
    c = log.report(hours(120))
    x = log.report(hours(70))
    (wave,) = log.detections
    assert wave.incident_ids == (a, b, x)
    # c is within 72 hours of the wave's span, so it joins it at once.
    assert log.members(wave.wave_id) == {a, b, x, c}


# --- one wave, not many -------------------------------------------------------------------


def test_four_shootings_in_three_days_are_one_wave():
    log = Log()
    ids = [log.report(hours(h)) for h in (0, 24, 26, 48)]
    (wave,) = log.detections
    assert wave.incident_ids == tuple(ids[:3])
    assert log.members(wave.wave_id) == set(ids)  # the fourth joined the wave


def test_a_shooting_near_a_wave_joins_it_even_beyond_the_first_window():
    log = Log()
    ids = [log.report(hours(h)) for h in (0, 10, 20)]
    (wave,) = log.detections
    # 92h is 72h after the last shooting of the wave: near its span, so it joins.
    later = log.report(hours(92))
    assert log.detections == [wave]
    assert log.members(wave.wave_id) == {*ids, later}


def test_shootings_far_from_a_wave_form_a_wave_of_their_own():
    log = Log()
    for h in (0, 10, 20):
        log.report(hours(h))
    second = [log.report(hours(h)) for h in (100, 110, 120)]
    first, other = log.detections
    assert other.incident_ids == tuple(second)
    assert other.wave_id != first.wave_id
    assert other.trigger_position == 6


def test_a_new_wave_takes_in_free_shootings_near_it():
    # 0h, 70h, 140h: no window of 72h holds three. 75h completes [70h, 142h]; 0h is then
    # within 72h of the wave's span and joins it.
    log = Log()
    a, b, c = (log.report(hours(h)) for h in (0, 70, 140))
    x = log.report(hours(75))
    (wave,) = log.detections
    assert wave.incident_ids == (b, x, c)
    assert log.members(wave.wave_id) == {a, b, c, x}


# --- amendments ---------------------------------------------------------------------------


def test_an_amendment_moving_a_shooting_into_the_area_completes_a_wave():
    log = Log()
    log.report(hours(0), ANDERLECHT)
    log.report(hours(5), ANDERLECHT)
    moved = log.report(hours(10), IXELLES)
    assert log.detections == []
    (wave,) = log.amend(moved, municipality=ANDERLECHT)
    assert moved in wave.incident_ids
    assert wave.trigger_position == 4  # the amendment's position
    assert (wave.trigger_incident_id, wave.trigger_version) == (moved, 2)


def test_an_amendment_moving_a_shooting_in_time_completes_a_wave():
    log = Log()
    log.report(hours(0))
    log.report(hours(5))
    moved = log.report(hours(200))
    assert log.detections == []
    (wave,) = log.amend(moved, when=hours(6))
    assert moved in wave.incident_ids


def test_an_amendment_moving_a_member_out_of_the_area_takes_it_out_of_the_wave():
    log = Log()
    ids = [log.report(hours(h)) for h in (0, 5, 10)]
    (wave,) = log.detections
    assert log.amend(ids[1], municipality=IXELLES) == []
    assert log.members(wave.wave_id) == {ids[0], ids[2]}
    assert log.wave_of(ids[1]) is None
    # The wave stays (it was detected); a new shooting near it joins it.
    newcomer = log.report(hours(12))
    assert log.members(wave.wave_id) == {ids[0], ids[2], newcomer}
    assert len(log.detections) == 1


def test_an_amendment_moving_a_member_far_in_time_takes_it_out_of_the_wave():
    log = Log()
    ids = [log.report(hours(h)) for h in (0, 5, 10)]
    (wave,) = log.detections
    log.amend(ids[0], when=hours(-500))
    assert log.members(wave.wave_id) == {ids[1], ids[2]}
    # A correction within T hours of the others keeps a member in its wave.
    log.amend(ids[2], when=hours(60))
    assert log.members(wave.wave_id) == {ids[1], ids[2]}


def test_a_member_that_moves_to_another_area_may_complete_a_wave_there():
    log = Log()
    ids = [log.report(hours(h)) for h in (0, 5, 10)]
    log.report(hours(1), IXELLES)
    log.report(hours(2), IXELLES)
    first = log.detections[0]
    (second,) = log.amend(ids[0], municipality=IXELLES)
    assert second.area_code == IXELLES
    assert ids[0] in second.incident_ids
    assert log.members(first.wave_id) == set(ids[1:])


def test_amending_other_facts_changes_nothing():
    log = Log()
    ids = [log.report(hours(h)) for h in (0, 5, 10)]
    (wave,) = log.detections
    assert log.amend(ids[0], when=hours(0)) == []
    assert log.members(wave.wave_id) == set(ids)


def test_an_amendment_of_an_unknown_incident_is_ignored():
    log = Log()
    assert log.amend(uuid4(), when=hours(3)) == []


def test_another_rule_gives_the_same_shootings_another_wave_id():
    found = []
    for rule in (WaveRule(), WaveRule(window_hours=48)):
        log = Log(rule)
        reported = [log.report(hours(h)) for h in (0, 5, 10)]
        (wave,) = log.detections
        assert wave.incident_ids == tuple(reported)
        found.append(wave.wave_id)
    assert found[0] != found[1]


def test_a_wave_id_does_not_depend_on_log_positions():
    # The same shootings, with other events between them (as in a log imported into a
    # registry that holds other events): the same wave, with the same id.
    shootings = [(uuid4(), hours(h)) for h in (0, 10, 20)]
    found = []
    for spacing in (1, 6):
        book = WaveBook(RULE)
        detections = []
        for number, (incident_id, when) in enumerate(shootings, start=1):
            fields = vars(_shooting(when))
            detections.extend(
                book.apply(incident_id, "ShootingReported", fields, number * spacing, 1)
            )
        (wave,) = detections
        found.append(wave)
    assert found[0].trigger_position != found[1].trigger_position
    assert found[0].wave_id == found[1].wave_id


def _shooting(when: datetime, municipality: str = ANDERLECHT) -> SimpleNamespace:
    return SimpleNamespace(
        occurred_at=when,
        municipality_code=municipality,
        police_zone_code=BRUSSELS.zone_of(municipality),
    )
