"""The waves read model on an SQLite view: rows loaded on demand decide like the pure rule.

Recording goes to a stand-in that behaves like the registry's idempotent writer (the same wave
again is a replay with the original position); the real one is exercised in
tests/integration/test_waves.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.base import Recorded
from projections.store import ViewStore, sqlite_store
from projections.waves import NAME, WaveBook, micros
from projections.waves_model import (
    WaveRuleChangedError,
    WavesProjection,
    blocking_recorder,
    query_waves,
)
from service.app.commands import RecordWave
from service.app.results import WriteResult
from service.areas import load_catalog
from service.domain.errors import StoreUnavailableError
from service.domain.incident import Incident
from service.domain.values import TimePrecision
from service.domain.wave import WaveRule, wave_id
from service.store.base import BackendUnavailableError
from service.store.transcoding import registry_mapper

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST, IXELLES = "21001", "21007", "21009"
MIDI = "5341"
T0 = datetime(2024, 11, 27, 6, 10, tzinfo=UTC)


class FakeWriter:
    """Records waves like the registry does: once each, replaying the original result."""

    def __init__(self) -> None:
        self.recorded: dict[UUID, WriteResult] = {}
        self.calls: list[RecordWave] = []
        self.fail_next = False

    def __call__(self, commands: Sequence[RecordWave]) -> list[WriteResult]:
        self.calls.extend(commands)
        if self.fail_next:
            self.fail_next = False
            msg = "the event store is down"
            raise BackendUnavailableError(msg)
        return [self._record(command) for command in commands]

    def _record(self, command: RecordWave) -> WriteResult:
        wave = wave_id(
            area_kind=command.area_kind,
            area_code=command.area_code,
            incident_ids=command.incident_ids,
            min_shootings=command.min_shootings,
            window_hours=command.window_hours,
            trigger_stream_id=command.trigger_incident_id,
            trigger_version=command.trigger_version,
        )
        if wave in self.recorded:
            first = self.recorded[wave]
            return WriteResult(first.aggregate_id, first.version, first.position, replayed=True)
        result = WriteResult(wave, 1, 10_000 + len(self.recorded))
        self.recorded[wave] = result
        return result


def reported(position: int, incident_id: UUID, hours: float, municipality: str) -> Recorded:
    event = SimpleNamespace(
        occurred_at=T0 + timedelta(hours=hours),
        municipality_code=municipality,
        police_zone_code=BRUSSELS.zone_of(municipality),
    )
    return Recorded(
        position=position,
        event_type="ShootingReported",
        originator_id=incident_id,
        originator_version=1,
        event=event,
    )


def amended(
    position: int, incident_id: UUID, hours: float | None, municipality: str | None
) -> Recorded:
    corrections: dict[str, Any] = {}
    if hours is not None:
        corrections["occurred_at"] = T0 + timedelta(hours=hours)
    if municipality is not None:
        corrections["municipality_code"] = municipality
    event = SimpleNamespace(
        corrections=corrections,
        police_zone_code=BRUSSELS.zone_of(municipality) if municipality else "",
    )
    return Recorded(
        position=position,
        event_type="IncidentAmended",
        originator_id=incident_id,
        originator_version=2,
        event=event,
    )


@pytest.fixture
def view(tmp_path) -> Iterator[ViewStore]:
    store = _installed(tmp_path / "views.sqlite")
    yield store
    store.close()


def _installed(path: Path) -> ViewStore:
    store = sqlite_store(path)
    projection = WavesProjection(None, FakeWriter())
    store.install(NAME, projection.version, projection.schema, projection.tables)
    return store


def apply_in_pages(
    store: ViewStore, projection: WavesProjection, events: Sequence[Recorded], size: int
) -> None:
    for start in range(0, len(events), size):
        with store.transaction() as tx:
            projection.apply(tx, events[start : start + size])


def memberships(store: ViewStore) -> dict[UUID, frozenset[UUID]]:
    """Every wave's current members, from the model's rows."""
    with store.transaction(write=False) as tx:
        return {row.wave_id: frozenset(row.incident_ids) for row in query_waves(tx, limit=10_000)}


def book_memberships(book: WaveBook) -> dict[UUID, frozenset[UUID]]:
    return {wave.wave_id: frozenset(wave.members) for wave in book.waves.values()}


# --- the model decides like the rule ------------------------------------------------------

AREAS = (ANDERLECHT, FOREST, IXELLES)
changes = st.lists(
    st.tuples(
        st.sampled_from(["report", "report", "move", "retime"]),
        st.integers(min_value=0, max_value=400),  # hours after T0
        st.sampled_from(AREAS),
        st.integers(min_value=0, max_value=10_000),  # which incident an amendment changes
    ),
    min_size=1,
    max_size=40,
)


def as_events(steps: list[tuple[str, int, str, int]]) -> list[Recorded]:
    incidents: list[UUID] = []
    events: list[Recorded] = []
    for kind, hours, area, pick in steps:
        position = len(events) + 1
        if kind == "report" or not incidents:
            incidents.append(uuid4())
            events.append(reported(position, incidents[-1], hours, area))
        elif kind == "move":
            events.append(amended(position, incidents[pick % len(incidents)], None, area))
        else:
            events.append(amended(position, incidents[pick % len(incidents)], hours, None))
    return events


def check_invariants(book: WaveBook) -> None:
    """No free incident is near a wave, and no window of T hours holds N free ones."""
    window = book.rule.window_hours * 3_600_000_000
    free: dict[str, list[int]] = {}
    for fact in book.facts.values():
        if fact.wave is None:
            free.setdefault(fact.area, []).append(fact.at)
    for wave in book.waves.values():
        span = book.span(wave.wave_id)
        if span is not None:
            near = [t for t in free.get(wave.area, []) if span[0] - window <= t <= span[1] + window]
            assert near == []
    for times in free.values():
        times.sort()
        for index, start in enumerate(times):
            inside = [t for t in times[index:] if t <= start + window]
            assert len(inside) < book.rule.min_shootings


@settings(max_examples=60, deadline=None)
@given(
    changes,
    st.sampled_from([1, 2, 3, 7, 500]),
    st.sampled_from([WaveRule(), WaveRule(min_shootings=2, window_hours=24),
                     WaveRule(area_kind="police_zone")]),
)  # fmt: skip
def test_paged_model_finds_the_waves_the_rule_finds(steps, page_size, rule):
    events = as_events(steps)
    book = WaveBook(rule)
    expected = []
    for recorded in events:
        fields = vars(recorded.event)
        incident, kind = recorded.originator_id, recorded.event_type
        expected.extend(
            book.apply(incident, kind, fields, recorded.position, recorded.originator_version)
        )
        check_invariants(book)
    writer = FakeWriter()
    with tempfile.TemporaryDirectory() as folder:
        store = _installed(Path(folder) / "views.sqlite")
        try:
            apply_in_pages(store, WavesProjection(rule, writer), events, page_size)
            assert [
                (c.trigger_incident_id, c.trigger_version, c.trigger_position) for c in writer.calls
            ] == [(d.trigger_incident_id, d.trigger_version, d.trigger_position) for d in expected]
            assert list(writer.recorded) == [d.wave_id for d in expected]
            assert memberships(store) == book_memberships(book)
        finally:
            store.close()


# --- recording ----------------------------------------------------------------------------


def four_shootings(municipality: str = ANDERLECHT) -> list[Recorded]:
    return [reported(n + 1, uuid4(), h, municipality) for n, h in enumerate((0, 24, 26, 48))]


def test_a_wave_is_recorded_with_its_facts_and_served_with_its_position(view):
    writer = FakeWriter()
    events = four_shootings()
    apply_in_pages(view, WavesProjection(WaveRule(), writer), events, 500)
    (command,) = writer.calls
    assert command == RecordWave(
        area_kind="municipality",
        area_code=ANDERLECHT,
        incident_ids=tuple(e.originator_id for e in events[:3]),
        municipality_codes=(ANDERLECHT,),
        first_occurred_at=T0,
        last_occurred_at=T0 + timedelta(hours=26),
        min_shootings=3,
        window_hours=72,
        trigger_incident_id=events[2].originator_id,
        trigger_version=1,
        trigger_position=3,
    )
    with view.transaction(write=False) as tx:
        (wave,) = query_waves(tx)
    assert wave.detected_position == 10_000
    assert wave.incident_ids == tuple(e.originator_id for e in events)
    assert wave.detected_incident_ids == command.incident_ids
    assert (wave.first_occurred_at, wave.last_occurred_at) == (T0, T0 + timedelta(hours=48))


def test_a_batch_applied_again_records_nothing_new(view):
    # As after a crash between recording and committing: the same batch, the same answer.
    writer = FakeWriter()
    events = four_shootings()

    def crash_before_the_commit() -> None:
        with view.transaction() as tx:
            WavesProjection(WaveRule(), writer).apply(tx, events)
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        crash_before_the_commit()
    assert memberships(view) == {}
    apply_in_pages(view, WavesProjection(WaveRule(), writer), events, 500)
    assert len(writer.calls) == 2
    assert len(writer.recorded) == 1
    ((wave, members),) = memberships(view).items()
    assert wave in writer.recorded
    assert len(members) == 4


def test_a_recording_failure_fails_the_batch(view):
    writer = FakeWriter()
    writer.fail_next = True
    events = four_shootings()
    with pytest.raises(BackendUnavailableError):
        apply_in_pages(view, WavesProjection(WaveRule(), writer), events, 500)
    assert memberships(view) == {}
    apply_in_pages(view, WavesProjection(WaveRule(), writer), events, 500)
    assert len(memberships(view)) == 1


def test_a_model_built_under_another_rule_must_be_rebuilt(view):
    apply_in_pages(view, WavesProjection(WaveRule(), FakeWriter()), four_shootings(), 500)
    changed = WavesProjection(WaveRule(window_hours=24), FakeWriter())
    with pytest.raises(WaveRuleChangedError, match="3 in 72h by municipality"):
        apply_in_pages(view, changed, four_shootings(), 500)


def test_with_detection_off_nothing_is_recorded(view):
    writer = FakeWriter()
    apply_in_pages(view, WavesProjection(None, writer), four_shootings(), 500)
    assert writer.calls == []
    assert memberships(view) == {}


def test_the_blocking_recorder_fails_the_batch_when_the_store_is_down():
    class Down:
        async def record(self, command):
            msg = "event store unavailable"
            raise StoreUnavailableError(msg)

    with pytest.raises(BackendUnavailableError, match="event store unavailable"):
        blocking_recorder(Down())([None])


def test_the_blocking_recorder_gives_up_after_its_timeout():
    import asyncio  # noqa: PLC0415

    class Stuck:
        async def record(self, command):
            await asyncio.sleep(10)

    with pytest.raises(BackendUnavailableError, match="TimeoutError"):
        blocking_recorder(Stuck(), timeout=0.05)([None])


# --- queries ------------------------------------------------------------------------------


def test_waves_are_selected_by_area_and_time_and_paged(view):
    events = [
        *four_shootings(ANDERLECHT),
        *[reported(10 + n, uuid4(), 200 + n, FOREST) for n in range(3)],
        *[reported(20 + n, uuid4(), 400 + n, IXELLES) for n in range(3)],
    ]
    apply_in_pages(view, WavesProjection(WaveRule(), FakeWriter()), events, 500)
    with view.transaction(write=False) as tx:
        every = query_waves(tx)
        assert [w.area_code for w in every] == [ANDERLECHT, FOREST, IXELLES]
        assert [w.area_code for w in query_waves(tx, municipalities=[FOREST])] == [FOREST]
        # A police zone matches the waves of its municipalities.
        by_zone = query_waves(tx, municipalities=[ANDERLECHT, FOREST], police_zones=[MIDI])
        assert [w.area_code for w in by_zone] == [ANDERLECHT, FOREST]
        assert query_waves(tx, area_kind="police_zone") == []
        # The time range selects waves whose span meets it.
        ranged = query_waves(
            tx, from_time=T0 + timedelta(hours=48), to_time=T0 + timedelta(hours=200)
        )
        assert [w.area_code for w in ranged] == [ANDERLECHT, FOREST]
        first = query_waves(tx, limit=2)
        rest = query_waves(
            tx, after=(micros(first[-1].first_occurred_at), str(first[-1].wave_id)), limit=2
        )
        assert [*first, *rest] == every


def test_stored_payloads_decide_like_decoded_events():
    # The model reads the stored JSON payload (times in their stored form) when it can.
    incidents = []
    for hours, municipality in ((0, ANDERLECHT), (5, ANDERLECHT), (300, IXELLES)):
        incident = Incident(
            occurred_at=T0 + timedelta(hours=hours), occurred_at_precision=TimePrecision.MINUTE,
            reported_at=T0 + timedelta(days=30), municipality_code=municipality,
            police_zone_code=BRUSSELS.zone_of(municipality), address="", location=None,
            weapons=(), assailant_count=0, assailants_masked=False, killed=0, injured=1,
            drug_nexus=False, description="", sources=(), external_reference="",
        )  # fmt: skip
        incidents.append(incident)
    incidents[-1].amend(
        occurred_at=T0,
        corrections={"occurred_at": T0 + timedelta(hours=9), "municipality_code": ANDERLECHT},
        police_zone_code=MIDI,
        reason="the first report placed it wrongly",
    )
    events = [event for incident in incidents for event in incident.collect_events()]
    mapper = registry_mapper()
    found = {}
    for stored in (False, True):
        book = WaveBook(WaveRule())
        detections = []
        for position, event in enumerate(events, start=1):
            fields = mapper.to_payload(mapper.to_stored_event(event)) if stored else vars(event)
            assert fields is not None
            kind = type(event).__name__
            detections.extend(
                book.apply(event.originator_id, kind, fields, position, event.originator_version)
            )
        found[stored] = [(d.wave_id, d.incident_ids) for d in detections]
    assert len(found[False]) == 1
    assert found[True] == found[False]
