"""The ViolenceWave aggregate and the Waves service: a wave is recorded once, whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from service.app.commands import RecordWave
from service.domain.base import recording_metadata
from service.domain.errors import InvalidArgumentError, NotFoundError, RuleViolatedError
from service.domain.events import EVENT_TYPES, STREAM_TYPE_OF_EVENT
from service.domain.wave import ViolenceWave, wave_id
from service.store.transcoding import registry_mapper
from tests.unit.app_driver import NOW, App, registries

ANDERLECHT = "21001"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with registries(tmp_path / "db.sqlite") as open_app:
        yield open_app()


def wave(**overrides) -> ViolenceWave:
    facts = {
        "occurred_at": NOW,
        "area_kind": "municipality",
        "area_code": ANDERLECHT,
        "incident_ids": (uuid4(), uuid4(), uuid4()),
        "municipality_codes": (ANDERLECHT,),
        "first_occurred_at": NOW - timedelta(hours=72),
        "last_occurred_at": NOW,
        "min_shootings": 3,
        "window_hours": 72,
        "trigger_position": 7,
    }
    return ViolenceWave(**{**facts, **overrides})


def test_a_wave_is_identified_by_its_rule_area_incidents_and_trigger():
    created = wave()
    assert created.id == wave_id(
        area_kind="municipality",
        area_code=ANDERLECHT,
        incident_ids=reversed(created.incident_ids),  # order does not matter
        min_shootings=3,
        window_hours=72,
        trigger_position=7,
    )
    assert wave(incident_ids=created.incident_ids).id == created.id
    assert wave(incident_ids=created.incident_ids, trigger_position=8).id != created.id
    assert wave(incident_ids=created.incident_ids, window_hours=96).id != created.id
    assert created.tags() == {f"municipality:{ANDERLECHT}"}


def test_wave_detected_is_a_registered_version_1_event_that_survives_transcoding():
    assert STREAM_TYPE_OF_EVENT["WaveDetected"] == "violence_wave"
    assert EVENT_TYPES["WaveDetected"].class_version == 1
    with recording_metadata({"actor": "projection:waves", "request_id": "r"}):
        (event,) = wave().collect_events()
    mapper = registry_mapper()
    decoded = mapper.to_domain_event(mapper.to_stored_event(event))
    assert decoded == event
    assert decoded.metadata == {"actor": "projection:waves", "request_id": "r"}


def test_a_wave_needs_n_distinct_shootings_within_t_hours():
    one = uuid4()
    with pytest.raises(RuleViolatedError, match="3 distinct"):
        wave(incident_ids=(one, one, uuid4()))
    with pytest.raises(RuleViolatedError, match="within 72 hours"):
        wave(first_occurred_at=NOW - timedelta(hours=72, microseconds=1))


def record(app: App, ids, **overrides) -> RecordWave:
    facts = {
        "area_kind": "municipality",
        "area_code": ANDERLECHT,
        "incident_ids": tuple(ids),
        "municipality_codes": (ANDERLECHT,),
        "first_occurred_at": NOW - timedelta(hours=30),
        "last_occurred_at": NOW - timedelta(hours=3),
        "min_shootings": 3,
        "window_hours": 72,
        "trigger_position": 3,
    }
    return RecordWave(**{**facts, **overrides})


def test_recording_a_wave_again_replays_the_first_recording(app):
    ids = [app.report() for _ in range(3)]
    command = record(app, ids)
    first = app.run(app.registry.waves.record(command))
    head = app.head()
    again = app.run(app.registry.waves.record(command))
    assert not first.replayed
    assert again.replayed
    assert (again.aggregate_id, again.position) == (first.aggregate_id, first.position)
    assert app.head() == head
    assert first.aggregate_id == ViolenceWave.create_id(
        area_kind="municipality",
        area_code=ANDERLECHT,
        incident_ids=tuple(ids),
        min_shootings=3,
        window_hours=72,
        trigger_position=3,
    )


def test_a_wave_of_unknown_incidents_is_not_recorded(app):
    ids = [app.report(), app.report(), uuid4()]
    with pytest.raises(NotFoundError):
        app.run(app.registry.waves.record(record(app, ids)))


def test_a_malformed_wave_is_an_invalid_argument(app):
    ids = [app.report() for _ in range(3)]
    with pytest.raises(InvalidArgumentError) as caught:
        app.run(
            app.registry.waves.record(
                record(app, [*ids, ids[0]], area_kind="city", min_shootings=1, trigger_position=0)
            )
        )
    fields = {v.field for v in caught.value.violations}
    assert {"area_kind", "min_shootings", "trigger_position", "incident_ids[3]"} <= fields
