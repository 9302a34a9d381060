"""What an imported event must be: checked on its own, in this process or in worker processes.

An event decodes through the mapper into any class its topic names, whatever attributes its
state has; the checks hold it to its class — exactly its attributes, each of its declared type —
before it can reach an aggregate or a projection. The import's worker processes reach the same
verdicts, and an import survives a worker that dies.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from service.app.exporting import PortableEvent
from service.app.import_checks import check_events, rows_of
from service.app.importing import POOLED_BATCH, EventImport
from service.domain.base import recording_metadata
from service.domain.errors import InvalidArgumentError
from service.domain.incident import Incident
from service.domain.values import GeoPoint, Source, SourceKind, TimePrecision, Weapon, WeaponKind
from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import registry_mapper
from tests.unit.app_driver import BRUSSELS, NOW

MUNICIPALITIES = frozenset(BRUSSELS.municipalities)


def shooting_events(count: int = 1) -> list[Any]:
    """Stored events of new incidents, each reported then revised."""
    mapper = registry_mapper()
    found: list[Any] = []
    for _ in range(count):
        with recording_metadata({"actor": "a", "request_id": "r"}):
            incident = Incident(
                occurred_at=NOW - timedelta(hours=3), occurred_at_precision=TimePrecision.MINUTE,
                reported_at=NOW, municipality_code="21001", police_zone_code="5341",
                address="Rue Wayez 1", location=GeoPoint(50.83, 4.30),
                weapons=(Weapon(WeaponKind.HANDGUN, 2),), assailant_count=1,
                assailants_masked=False, killed=0, injured=1, drug_nexus=True, description="",
                sources=(Source(SourceKind.PRESS, "Le Soir", "", NOW),), external_reference="",
            )  # fmt: skip
            incident.revise_casualties(occurred_at=NOW, killed=1, injured=0, reason="died")
        found.extend(mapper.to_stored_event(e) for e in incident.collect_events())
    return found


def portable(stored: Any, **changes: Any) -> PortableEvent:
    name = stored.topic.rpartition(".")[2]
    event = PortableEvent(
        position=0,
        stream_id=stored.originator_id,
        stream_type="incident",
        stream_version=stored.originator_version,
        event_type=name,
        recorded_at=None,
        tags=("municipality:21001",),
        state=stored.state,
    )
    return event._replace(**changes)


def problems(event: PortableEvent) -> dict[str, str]:
    return {field: text for _, field, text in check_events(rows_of([event]), MUNICIPALITIES)}


def with_state(event: PortableEvent, **changes: Any) -> PortableEvent:
    state = json.loads(event.state)
    for name, value in changes.items():
        state[name] = value
    return event._replace(state=json.dumps(state).encode())


@pytest.fixture
def shooting() -> PortableEvent:
    return portable(shooting_events()[0])


def test_an_exported_event_passes(shooting):
    assert problems(shooting) == {}
    revision = portable(shooting_events()[1])
    assert problems(revision) == {}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"killed": True}, "killed must be int, not True"),
        ({"address": None}, "address must be str, not None"),
        ({"injured": 1.0}, "injured must be int, not 1.0"),
        (
            {"weapons": [{"_type_": "Weapon", "_data_": {"kind": "handgun", "count": 2}}]},
            "weapons must be tuple[Weapon, ...], not (Weapon(kind='handgun'",
        ),
        (
            {"occurred_at": {"_type_": "datetime_iso", "_data_": "2024-06-01T09:00:00"}},
            "occurred_at must be datetime with a time zone",
        ),
        ({"metadata": {"actor": 7}}, "metadata must be dict[str, str]"),
        ({"location": {"_type_": "GeoPoint", "_data_": {"latitude": 50.8}}}, "does not decode"),
        ({"occurred_at_precision": {"_type_": "TimePrecision", "_data_": "year"}}, "decode"),
        ({"class_version": 2}, "class_version must be at most 1, not 2"),
    ],
)
def test_a_state_that_does_not_fit_its_class_is_named(shooting, changes, expected):
    found = problems(with_state(shooting, **changes))
    assert expected in found["state_json"], found


def test_a_created_event_names_its_own_aggregate(shooting):
    found = problems(with_state(shooting, originator_topic="service.domain.gang:Gang"))
    assert "originator_topic must be 'service.domain.incident:Incident'" in found["state_json"]


def test_identity_recorded_time_and_tags_are_checked(shooting):
    assert set(problems(shooting._replace(event_type="ShotsHeard"))) == {"event_type"}
    assert set(problems(shooting._replace(stream_type="gang"))) == {"stream_type"}
    assert set(problems(shooting._replace(stream_version=3))) == {"stream_version"}
    late = shooting._replace(recorded_at=NOW + timedelta(days=1))
    assert set(problems(late)) == {"recorded_at"}
    state_time = json.loads(shooting.state)["timestamp"]["_data_"]
    assert problems(shooting._replace(recorded_at=_parse(state_time))) == {}
    tags = ("municipality:21001", "gang:" + str(uuid4()).upper(), "zone:5341", "municipality:1")
    assert set(problems(shooting._replace(tags=tags))) == {"tags[1]", "tags[2]", "tags[3]"}


def test_a_description_quoting_class_version_is_no_version(shooting):
    assert problems(with_state(shooting, description='"class_version": 9')) == {}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- worker processes ---------------------------------------------------------------------------


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[EventImport]:
    store = SQLiteEventStore(tmp_path / "log.sqlite")
    reads = ThreadPoolExecutor(max_workers=1)
    imports = EventImport(store, registry_mapper(), BRUSSELS, reads, workers=1)
    yield imports
    imports.close()
    reads.shutdown()
    store.close()


def test_workers_reach_the_same_verdicts_and_a_dead_worker_is_replaced(importer):
    events = [portable(e) for e in shooting_events(POOLED_BATCH // 2 + 1)]
    assert len(events) >= POOLED_BATCH
    bad = len(events) - 2
    broken = list(events)
    broken[bad] = with_state(events[bad], injured=-1.5)
    with pytest.raises(InvalidArgumentError) as caught:
        importer._import(broken)  # noqa: SLF001 - the synchronous core of import_events
    assert [v.field for v in caught.value.violations] == [f"events[{bad}].state_json"]
    assert importer._pool is not None  # noqa: SLF001

    # A worker killed (out of memory, an operator...) fails no import: the batch is checked
    # here, and the next large batch starts a new pool.
    for pid in list(importer._pool._processes):  # noqa: SLF001
        os.kill(pid, signal.SIGKILL)
    result = importer._import(events)  # noqa: SLF001
    assert (result.imported, result.skipped) == (len(events), 0)
    again = importer._import(events)  # noqa: SLF001
    assert (again.imported, again.skipped) == (0, len(events))
    assert importer._pool is not None  # noqa: SLF001
