"""The ViolenceWave aggregate and the Waves service: a wave is recorded once, whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

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


def wave(trigger: tuple[UUID, int] | None = None, **overrides) -> ViolenceWave:
    """A wave; its id derives from its facts and `trigger` (default: its last incident, v1)."""
    facts: dict[str, Any] = {
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
    facts.update(overrides)
    stream, version = trigger or (facts["incident_ids"][-1], 1)
    identity = wave_id(
        area_kind=facts["area_kind"],
        area_code=facts["area_code"],
        incident_ids=facts["incident_ids"],
        min_shootings=facts["min_shootings"],
        window_hours=facts["window_hours"],
        trigger_stream_id=stream,
        trigger_version=version,
    )
    return ViolenceWave(id=identity, **facts)


def test_a_wave_is_identified_by_its_rule_area_incidents_and_trigger_event():
    created = wave()
    ids = created.incident_ids
    assert created.id == wave_id(
        area_kind="municipality",
        area_code=ANDERLECHT,
        incident_ids=reversed(ids),  # order does not matter
        min_shootings=3,
        window_hours=72,
        trigger_stream_id=ids[-1],
        trigger_version=1,
    )
    assert wave(incident_ids=ids).id == created.id
    # The trigger is an event of a stream, not a log position: positions differ between a
    # log and its imported copy.
    assert wave(incident_ids=ids, trigger_position=8).id == created.id
    assert wave((ids[-1], 2), incident_ids=ids).id != created.id
    assert wave((ids[0], 1), incident_ids=ids).id != created.id
    assert wave(incident_ids=ids, window_hours=96).id != created.id
    assert created.tags() == {f"municipality:{ANDERLECHT}"}


def test_a_wave_cannot_be_created_without_its_derived_id():
    with pytest.raises(TypeError, match="'id'"):
        ViolenceWave(
            occurred_at=NOW, area_kind="municipality", area_code=ANDERLECHT,
            incident_ids=(uuid4(), uuid4(), uuid4()), municipality_codes=(ANDERLECHT,),
            first_occurred_at=NOW, last_occurred_at=NOW, min_shootings=3, window_hours=72,
            trigger_position=1,
        )  # fmt: skip


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
        "trigger_incident_id": ids[-1],
        "trigger_version": 1,
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
    assert first.aggregate_id == wave_id(
        area_kind="municipality",
        area_code=ANDERLECHT,
        incident_ids=tuple(ids),
        min_shootings=3,
        window_hours=72,
        trigger_stream_id=ids[-1],
        trigger_version=1,
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
                record(
                    app,
                    [*ids, ids[0]],
                    area_kind="city",
                    min_shootings=1,
                    trigger_incident_id=uuid4(),
                    trigger_version=0,
                    trigger_position=0,
                )
            )
        )
    fields = {v.field for v in caught.value.violations}
    assert {
        "area_kind",
        "min_shootings",
        "trigger_incident_id",
        "trigger_version",
        "trigger_position",
        "incident_ids[3]",
    } <= fields


def imported_wave(app: App, command: RecordWave, **changes: Any) -> int:
    """Write the command's wave as an import would: its event, without a request record."""
    facts = {
        name: getattr(command, name)
        for name in (
            "area_kind", "area_code", "incident_ids", "municipality_codes", "first_occurred_at",
            "last_occurred_at", "min_shootings", "window_hours",
        )
    }  # fmt: skip
    facts.update(changes)
    identity = wave_id(
        area_kind=command.area_kind,
        area_code=command.area_code,
        incident_ids=command.incident_ids,
        min_shootings=command.min_shootings,
        window_hours=command.window_hours,
        trigger_stream_id=command.trigger_incident_id,
        trigger_version=command.trigger_version,
    )
    # Detected elsewhere, at another position of another log.
    with recording_metadata({"actor": "projection:waves", "request_id": "elsewhere"}):
        detected = ViolenceWave(
            id=identity, occurred_at=command.last_occurred_at, trigger_position=999, **facts
        )
    mapper = registry_mapper()
    events = [mapper.to_stored_event(e) for e in detected.collect_events()]
    (position,) = app.registry.backend.append_events(events, [["municipality:21001"]])
    return position


def test_a_wave_in_the_log_without_a_request_record_is_recorded_already(app):
    # As after an import: the wave's event is there, its request id was never seen here.
    ids = [app.report() for _ in range(3)]
    command = record(app, ids)
    position = imported_wave(app, command)
    head = app.head()
    result = app.run(app.registry.waves.record(command))
    assert result.replayed
    assert (result.version, result.position) == (1, position)
    assert app.head() == head


def test_a_wave_in_the_log_with_other_facts_is_a_broken_rule(app):
    ids = [app.report() for _ in range(3)]
    command = record(app, ids)
    imported_wave(app, command, last_occurred_at=NOW - timedelta(hours=2))
    with pytest.raises(RuleViolatedError, match="last_occurred_at"):
        app.run(app.registry.waves.record(command))
