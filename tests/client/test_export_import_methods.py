"""ReportShootings, ExportEvents and ImportEvents through the sync client."""

from __future__ import annotations

import json

import pytest
from incident_registry_client import (
    ExportedEvent,
    ExportFinished,
    ImportConflictError,
    InvalidArgumentError,
    RegistryClient,
    ShootingReport,
    TimePrecision,
    Weapon,
    WeaponKind,
)
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2

from tests.client.conftest import ANDERLECHT, FAST_RETRY, IXELLES, hours_ago, report
from tests.client.proxy import Cut
from tests.support.harness import ServerHarness


def shooting(**overrides):
    fields = {
        "occurred_at": hours_ago(3),
        "occurred_at_precision": TimePrecision.HOUR,
        "municipality_code": ANDERLECHT,
        "weapons": [Weapon(WeaponKind.HANDGUN)],
    }
    fields.update(overrides)
    return ShootingReport(**fields)


def test_report_shootings_records_a_batch_in_order(client):
    batch = [shooting(), shooting(municipality_code=IXELLES, killed=1), shooting()]
    results = client.report_shootings(shootings=batch)
    assert [r.position for r in results] == [1, 2, 3]
    assert len({r.aggregate_id for r in results}) == 3
    second = client.get_incident(incident_id=results[1].aggregate_id).state
    assert (second.municipality_code, second.killed) == (IXELLES, 1)


def test_report_shootings_writes_nothing_when_one_is_invalid(client):
    batch = [shooting(), shooting(weapons=[Weapon(WeaponKind.HANDGUN, 0)])]
    with pytest.raises(InvalidArgumentError) as raised:
        client.report_shootings(shootings=batch)
    assert [v.field for v in raised.value.field_violations] == ["requests[1].weapons[0].count"]
    assert client.get_head().position == 0


def test_a_batch_with_its_request_ids_is_replayed(client):
    batch = [shooting(request_id="batch-1"), shooting(request_id="batch-2")]
    first = client.report_shootings(shootings=batch)
    again = client.report_shootings(shootings=batch)
    assert [r.replayed for r in again] == [True, True]
    assert [r.aggregate_id for r in again] == [r.aggregate_id for r in first]


def test_export_a_range_of_the_log(client):
    for _ in range(4):
        report(client)
    items = list(client.export_events(after_position=1, to_position=3))
    *events, finished = items
    assert [e.position for e in events] == [2, 3]
    assert finished == ExportFinished(position=3, exported=2)
    event = events[0]
    assert isinstance(event, ExportedEvent)
    assert (event.stream_type, event.event_type, event.stream_version) == (
        "incident",
        "ShootingReported",
        1,
    )
    assert f"municipality:{ANDERLECHT}" in event.tags
    assert isinstance(json.loads(event.state_json), dict)


def test_an_export_cut_mid_stream_resumes_after_the_last_event(client, proxy):
    for _ in range(5):
        report(client)
    proxy.fail("ExportEvents", Cut(after=2))
    with RegistryClient(proxy.target, retry=FAST_RETRY) as registry:
        items = list(registry.export_events(max_batch_size=1))
    *events, finished = items
    assert [e.position for e in events] == [1, 2, 3, 4, 5]
    assert finished == ExportFinished(position=5, exported=5)
    resumed = event_log_service_pb2.ExportEventsRequest.FromString(
        proxy.calls_of("ExportEvents")[1].request
    )
    assert resumed.after_position == 2


@pytest.fixture
def other_server(tmp_path):
    harness = ServerHarness(tmp_path / "other.sqlite").start()
    yield harness
    harness.stop()


def test_import_copies_a_log_and_skips_what_is_there(client, other_server):
    written = [report(client), report(client, municipality_code=IXELLES)]
    exported = [item for item in client.export_events() if isinstance(item, ExportedEvent)]
    with RegistryClient(other_server.target, retry=FAST_RETRY) as other:
        result = other.import_events(events=exported)
        assert (result.imported, result.skipped) == (2, 0)
        assert (result.first_position, result.last_position) == (1, 2)
        again = other.import_events(events=exported)
        assert (again.imported, again.skipped) == (0, 2)
        copied = other.get_incident(incident_id=written[1].aggregate_id).state
        assert copied.municipality_code == IXELLES

        different = report(other)  # another incident at position 3 of the other log
        assert different.position == 3
        (theirs,) = [
            e for e in other.export_events(after_position=2) if isinstance(e, ExportedEvent)
        ]
    mine = exported[0]
    conflicting = ExportedEvent(
        position=mine.position,
        stream_id=mine.stream_id,
        stream_type=mine.stream_type,
        stream_version=mine.stream_version,
        event_type=mine.event_type,
        recorded_at=theirs.recorded_at,
        tags=theirs.tags,
        state_json=theirs.state_json,
    )
    with pytest.raises(ImportConflictError) as raised:
        client.import_events(events=[conflicting])
    (conflict,) = raised.value.conflicts
    assert (conflict.index, conflict.stream_id) == (0, str(mine.stream_id))
    assert conflict.existing_position == 1
    assert raised.value.total == 1
