"""Export, import and migration over real channels: ExportEvents and ImportEvents.

A registry's log is exported, imported into a fresh registry — SQLite, or PostgreSQL for the
migration — and the copy is the same registry: every aggregate, every read model, every wave
(by id). Importing again, or resuming before where an import stopped, writes nothing twice; a
conflicting or invalid batch writes nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2_grpc,
    incident_service_pb2,
    incident_service_pb2_grpc,
)

from service.app.importing import POOLED_BATCH
from service.areas import load_catalog
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from service.store.postgres import PostgresEventStore
from tests.support import builders as b
from tests.support.harness import ServerHarness
from tests.support.log_helpers import Subscriber, events_of, read_all_pages
from tests.support.postgres import fresh_schema
from tests.support.stores import BOTH_STORES
from tests.support.transfer import (
    ANDERLECHT,
    WAIT,
    Written,
    export_all,
    head_of,
    import_in_batches,
    populate,
    position_map,
    settled_head,
    snapshot,
    translated,
    waves_of,
)

UCCLE = "21016"  # a municipality (and police zone) that `populate` leaves alone


def harness(path: Path, factory: Callable[[], EventStoreBackend] | None = None) -> ServerHarness:
    """A registry server that detects waves (so that WaveDetected events travel too)."""
    return ServerHarness(path, backend_factory=factory, wave_rule=WaveRule()).start()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[ServerHarness]:
    """The registry exported from (SQLite)."""
    server = harness(tmp_path / "source" / "registry.sqlite")
    yield server
    server.stop()


@pytest.fixture
def target(
    tmp_path: Path, backend_factory: Callable[[], EventStoreBackend]
) -> Iterator[ServerHarness]:
    """A fresh registry imported into (SQLite unless a test asks for both stores)."""
    server = harness(tmp_path / "target" / "registry.sqlite", backend_factory)
    yield server
    server.stop()


@pytest.fixture
def src(source: ServerHarness) -> Iterator[grpc.Channel]:
    with source.channel() as channel:
        yield channel


@pytest.fixture
def dst(target: ServerHarness) -> Iterator[grpc.Channel]:
    with target.channel() as channel:
        yield channel


def log_stub(channel: grpc.Channel) -> event_log_service_pb2_grpc.EventLogServiceStub:
    return event_log_service_pb2_grpc.EventLogServiceStub(channel)


def imported(channel: grpc.Channel, events: list[pb.ExportedEvent]) -> pb.ImportEventsResponse:
    return log_stub(channel).ImportEvents(pb.ImportEventsRequest(events=events), timeout=WAIT)


def failure(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def copied_exactly(copy: list[pb.ExportedEvent], original: list[pb.ExportedEvent]) -> None:
    """The copy holds the same events (stream, version, type, tags, state), in the same order.

    A wave may have been recorded by the copy's own waves projection before the original's
    WaveDetected arrived (which was then skipped): such waves are compared by their stream.
    """
    assert waves_of(copy) == waves_of(original)
    assert [_portable(e) for e in copy if e.event_type != "WaveDetected"] == [
        _portable(e) for e in original if e.event_type != "WaveDetected"
    ]


def _portable(event: pb.ExportedEvent) -> pb.ExportedEvent:
    copy = pb.ExportedEvent()
    copy.CopyFrom(event)
    copy.ClearField("position")
    return copy


def _changed(event: pb.ExportedEvent, **fields: object) -> pb.ExportedEvent:
    copy = pb.ExportedEvent()
    copy.CopyFrom(event)
    for name, value in fields.items():
        if name == "tags":
            del copy.tags[:]
            copy.tags.extend(value)  # type: ignore[arg-type]
        elif name == "recorded_at":
            copy.recorded_at.CopyFrom(value)  # type: ignore[arg-type]
        else:
            setattr(copy, name, value)
    return copy


def _state_with(event: pb.ExportedEvent, **changes: object) -> str:
    """The event's state with attributes replaced (None: removed)."""
    state = json.loads(event.state_json)
    for name, value in changes.items():
        if value is None:
            del state[name]
        else:
            state[name] = value
    return json.dumps(state)


# --- export ------------------------------------------------------------------------------------


def test_an_export_holds_every_event_with_its_identity_tags_and_stored_state(source, src):
    written = populate(src)
    head = settled_head(src)
    events, finished = export_all(src, batch=7)
    assert (finished.position, finished.exported) == (head, len(events))
    assert [e.position for e in events] == list(range(1, head + 1))

    # Identity and times as the log serves them.
    envelopes, _ = read_all_pages(log_stub(src))
    assert [
        (e.position, e.stream_id, e.stream_type, e.stream_version, e.event_type, e.recorded_at)
        for e in events
    ] == [
        (e.position, e.stream_id, e.stream_type, e.stream_version, e.event_type, e.recorded_at)
        for e in envelopes
    ]
    # The state is every stored attribute in the library's JSON transcoding, in plaintext.
    stored = source.registry.backend.read_page(after=0, limit=head).notifications
    assert [e.state_json.encode() for e in events] == [n.state for n in stored]
    state = json.loads(events[0].state_json)
    assert state["metadata"]["actor"] == b.ACTOR
    assert state["timestamp"]["_type_"] == "datetime_iso"
    # Tags are the store's: a filter on a tag selects exactly the events exported with it.
    for tag in (f"gang:{written.gangs[0]}", f"municipality:{ANDERLECHT}"):
        tagged, _ = read_all_pages(log_stub(src), log_filter=pb.EventFilter(tags=[tag]))
        assert [e.position for e in tagged] == [e.position for e in events if tag in e.tags]
    assert all(list(e.tags) == sorted(e.tags) for e in events)
    assert waves_of(events)


def test_an_export_covers_a_range_in_batches_and_resumes_after_its_last_position(src):
    populate(src)
    events, finished = export_all(src, after=5, to=20, batch=4)
    assert [e.position for e in events] == list(range(6, 21))
    assert (finished.position, finished.exported) == (20, 15)
    request = pb.ExportEventsRequest(after_position=5, to_position=20, max_batch_size=4)
    messages = list(log_stub(src).ExportEvents(request, timeout=WAIT))
    assert [len(m.events.events) for m in messages[:-1]] == [4, 4, 4, 3]
    # Resuming after the last position received gives exactly the rest.
    head = settled_head(src)
    first, _ = export_all(src, to=12)
    rest, finished = export_all(src, after=first[-1].position)
    everything, _ = export_all(src)
    assert first + rest == everything
    assert finished.position == head
    # An empty range finishes at once.
    assert export_all(src, after=7, to=7) == ([], pb.ExportFinished(position=7, exported=0))


def test_an_export_ends_at_the_head_it_started_at(src):
    populate(src)
    head = settled_head(src)
    messages = log_stub(src).ExportEvents(pb.ExportEventsRequest(max_batch_size=1), timeout=WAIT)
    first = next(messages)
    # Written while the export runs: not part of it.
    later = incident_service_pb2_grpc.IncidentServiceStub(src).ReportShooting(
        b.shooting(municipality_code=UCCLE), metadata=b.ACTOR_METADATA, timeout=WAIT
    )
    rest = list(messages)
    sent = [*first.events.events, *(e for m in rest[:-1] for e in m.events.events)]
    assert [e.position for e in sent] == list(range(1, head + 1))
    assert rest[-1].finished == pb.ExportFinished(position=head, exported=head)
    assert later.result.position > head


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"after_position": 10_000}, grpc.StatusCode.OUT_OF_RANGE, "after_position"),
        ({"to_position": 10_000}, grpc.StatusCode.OUT_OF_RANGE, "to_position"),
        ({"after_position": 5, "to_position": 3}, grpc.StatusCode.INVALID_ARGUMENT, "to_position"),
        ({"after_position": -1}, grpc.StatusCode.INVALID_ARGUMENT, "after_position"),
        ({"max_batch_size": 2001}, grpc.StatusCode.INVALID_ARGUMENT, "max_batch_size"),
        ({"max_batch_size": -1}, grpc.StatusCode.INVALID_ARGUMENT, "max_batch_size"),
    ],
)
def test_an_export_of_an_impossible_range_fails(src, fields, code, field):
    populate(src)
    request = pb.ExportEventsRequest(**fields)
    err = failure(lambda: list(log_stub(src).ExportEvents(request, timeout=WAIT)))
    assert err.code() == code
    assert field in b.field_violations(err)


# --- import into an empty registry, and migration -----------------------------------------------


def test_an_import_into_an_empty_registry_reproduces_every_aggregate_and_read_model(src, dst):
    written = populate(src)
    head = settled_head(src)
    events, _ = export_all(src)
    replies = import_in_batches(dst, events, 7)  # streams continue across batches
    assert sum(r.imported + r.skipped for r in replies) == len(events)
    assert replies[0].first_position == 1
    copy, _ = export_all(dst)
    copied_exactly(copy, events)

    positions = position_map(events, copy)
    expected = translated(snapshot(src, written, head), positions)
    actual = translated(snapshot(dst, written, settled_head(dst)))
    assert actual.keys() == expected.keys()
    for name, message in expected.items():
        assert actual[name] == message, name
    assert expected["waves"].waves
    assert expected["incidents"].incidents


def test_a_registry_migrated_from_sqlite_to_postgresql_is_the_same_registry(
    tmp_path, src, postgres
):
    written = populate(src)
    head = settled_head(src)
    events, _ = export_all(src)
    with fresh_schema(postgres) as settings:
        target = harness(tmp_path / "pg" / "registry.sqlite", lambda: PostgresEventStore(settings))
        try:
            with target.channel() as dst:
                replies = import_in_batches(dst, events, 25)
                assert sum(r.imported + r.skipped for r in replies) == len(events)
                copy, _ = export_all(dst)
                positions = position_map(events, copy)
                expected = translated(snapshot(src, written, head), positions)
                actual = translated(snapshot(dst, written, settled_head(dst)))
        finally:
            target.stop()
    copied_exactly(copy, events)
    assert actual.keys() == expected.keys()
    for name, message in expected.items():
        assert actual[name] == message, name
    statistics = [name for name in expected if name.startswith("statistics")]
    assert all(expected[name].rows for name in statistics)


def test_an_import_into_a_registry_with_other_events_gets_new_positions_and_the_same_waves(
    src, dst
):
    written = populate(src)
    head = settled_head(src)
    events, _ = export_all(src)
    # The target has a shooting of its own: every imported event lands one position later.
    incident_service_pb2_grpc.IncidentServiceStub(dst).ReportShooting(
        b.shooting(municipality_code=UCCLE), metadata=b.ACTOR_METADATA, timeout=WAIT
    )
    import_in_batches(dst, events, 2000)
    copy, _ = export_all(dst)
    positions = position_map(events, copy)
    assert set(positions.values()) == set(range(2, len(events) + 2))
    expected = translated(snapshot(src, written, head), positions)
    actual = translated(snapshot(dst, written, settled_head(dst)))
    # Uccle's rows aside, every answer is the same — waves included, with the same ids.
    extra = {UCCLE, load_catalog("brussels").zone_of(UCCLE)}
    for name, message in expected.items():
        if name.startswith("statistics"):
            assert [r for r in actual[name].rows if r.area_code not in extra] == list(
                message.rows
            ), name
        elif name == "incidents":
            assert [i for i in actual[name].incidents if i.municipality_code != UCCLE] == list(
                message.incidents
            )
        elif not name.startswith("breakdown"):
            assert actual[name] == message, name
    assert actual["waves"].waves


# --- waves across an import ---------------------------------------------------------------------


def test_an_imported_wave_is_found_again_by_the_waves_projection_and_not_recorded_twice(src, dst):
    populate(src)
    settled_head(src)
    events, _ = export_all(src)
    # One batch: the waves projection meets each shooting with its WaveDetected already there.
    assert imported(dst, events).imported == len(events)
    assert settled_head(dst) == len(events)
    copy, _ = export_all(dst)
    # The WaveDetected events are the imported ones, with the source's metadata.
    assert [_portable(e) for e in copy] == [_portable(e) for e in events]
    src_waves = snapshot(src, Written(), head_of(src))["waves"].waves
    dst_waves = snapshot(dst, Written(), head_of(dst))["waves"].waves
    assert [w.wave_id for w in dst_waves] == [w.wave_id for w in src_waves]


def test_a_wave_the_target_recorded_first_makes_its_imported_copy_a_skip(src, dst):
    populate(src)
    settled_head(src)
    events, _ = export_all(src)
    shootings = [e for e in events if e.event_type != "WaveDetected"]
    detected = [e for e in events if e.event_type == "WaveDetected"]
    assert imported(dst, shootings).imported == len(shootings)
    # The target's own projection finds and records the waves...
    settled_head(dst)
    copy, _ = export_all(dst)
    assert waves_of(copy) == waves_of(detected)
    # Recorded here, later than in the source, and completed at other positions.
    assert [json.loads(e.state_json)["timestamp"] for e in copy[len(shootings) :]] != [
        json.loads(e.state_json)["timestamp"] for e in detected
    ]
    # ...so the source's WaveDetected events say nothing new: skipped, not conflicting.
    reply = imported(dst, detected)
    assert (reply.imported, reply.skipped) == (0, len(detected))
    assert head_of(dst) == len(copy)


# --- idempotency, resumption, conflicts ---------------------------------------------------------


@BOTH_STORES
def test_importing_again_skips_every_event_and_writes_nothing(src, dst):
    populate(src)
    events, _ = export_all(src)
    import_in_batches(dst, events, 50)
    head = head_of(dst)
    again = import_in_batches(dst, events, 50)
    assert [r.imported for r in again] == [0] * len(again)
    assert sum(r.skipped for r in again) == len(events)
    assert [(r.first_position, r.last_position) for r in again] == [(0, 0)] * len(again)
    assert head_of(dst) == head


@BOTH_STORES
def test_an_import_resumed_before_where_it_stopped_skips_the_overlap(src, dst):
    populate(src)
    events, _ = export_all(src)
    stopped = len(events) * 2 // 3
    import_in_batches(dst, events[:stopped], 10)
    # The operator resumes from an earlier checkpoint: the overlap is skipped, the rest added.
    resumed = import_in_batches(dst, events[stopped - 12 :], 10)
    assert sum(r.skipped for r in resumed) == 12
    assert sum(r.imported for r in resumed) == len(events) - stopped
    copy, _ = export_all(dst)
    copied_exactly(copy, events)


@BOTH_STORES
def test_a_conflicting_event_aborts_the_batch_and_writes_nothing(src, dst):
    populate(src)
    events, _ = export_all(src)
    import_in_batches(dst, events[:20], 20)
    head = head_of(dst)
    changed = _changed(events[3], state_json=_state_with(events[3], metadata={"actor": "x"}))
    err = failure(lambda: imported(dst, [*events[20:25], changed]))
    assert err.code() == grpc.StatusCode.ABORTED
    (info,) = b.error_details(err)
    assert info.reason == "IMPORT_CONFLICT"
    assert dict(info.metadata) == {
        "index": "5",
        "stream_id": events[3].stream_id,
        "stream_version": str(events[3].stream_version),
        "existing_position": str(events[3].position),  # imported first, at the same position
        "conflicts": "1",
    }
    assert head_of(dst) == head  # not even the five new events


# --- invalid batches ----------------------------------------------------------------------------


def test_invalid_events_are_rejected_with_field_violations_and_nothing_is_written(src, dst):
    populate(src)
    events, _ = export_all(src)
    shooting = next(e for e in events if e.event_type == "ShootingReported")
    revision = next(e for e in events if e.event_type == "CasualtiesRevised")
    gang_topic = "service.domain.gang:Gang"
    cases = [
        (_changed(shooting, event_type="ShotsHeard"), "event_type"),
        (_changed(shooting, stream_type="gang"), "stream_type"),
        (_changed(shooting, stream_version=2), "stream_version"),  # a creation at version 2
        (_changed(revision, stream_version=1), "stream_version"),
        (_changed(shooting, state_json="{not json"), "state_json"),
        (_changed(shooting, state_json=_state_with(shooting, killed=None)), "state_json"),
        (_changed(shooting, state_json=_state_with(shooting, killed="3")), "state_json"),
        (_changed(shooting, state_json=_state_with(shooting, surprise=1)), "state_json"),
        (_changed(shooting, state_json=_state_with(shooting, originator_topic=gang_topic)),
         "state_json"),
        (_changed(shooting, recorded_at=b.ts(b.ago(days=3))), "recorded_at"),
        (_changed(shooting, tags=["municipality:99999"]), "tags[0]"),
        (_changed(shooting, tags=["precinct:7"]), "tags[0]"),
        (_changed(shooting, tags=["gang:not-a-uuid"]), "tags[0]"),
        (_changed(shooting, tags=[f"municipality:{ANDERLECHT}"] * 2), "tags[1]"),
        (_changed(shooting, stream_id="not-a-uuid"), "stream_id"),
    ]  # fmt: skip
    for event, field in cases:
        err = failure(lambda event=event: imported(dst, [event]))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert f"events[0].{field}" in b.field_violations(err), (field, b.field_violations(err))
    # Every problem of a batch is named at once.
    many = failure(lambda: imported(dst, [event for event, _ in cases[:5]]))
    assert set(b.field_violations(many)) == {
        f"events[{index}].{field}" for index, (_, field) in enumerate(cases[:5])
    }
    assert head_of(dst) == 0


def test_versions_must_continue_each_stream(src, dst):
    populate(src)
    events, _ = export_all(src)
    revision = next(e for e in events if e.event_type == "CasualtiesRevised")
    stream = [e for e in events if e.stream_id == revision.stream_id]
    # A version given twice in a batch, and a stream continued where the log has no start.
    twice = failure(lambda: imported(dst, [stream[0], stream[1], stream[1]]))
    assert list(b.field_violations(twice)) == ["events[2].stream_version"]
    orphan = failure(lambda: imported(dst, [revision]))
    assert list(b.field_violations(orphan)) == ["events[0].stream_version"]
    imported(dst, stream[:1])
    gap = failure(lambda: imported(dst, stream[2:3] or [_changed(stream[1], stream_version=3)]))
    assert list(b.field_violations(gap)) == ["events[0].stream_version"]
    assert head_of(dst) == 1


def test_a_batch_holds_one_to_two_thousand_events(src, dst):
    populate(src)
    events, _ = export_all(src)
    for batch in ([], [events[0]] * 2001):
        err = failure(lambda batch=batch: imported(dst, batch))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "events" in b.field_violations(err)
    assert head_of(dst) == 0


@BOTH_STORES
def test_a_large_batch_is_checked_in_worker_processes_with_the_same_verdicts(src, dst):
    incident_service_pb2_grpc.IncidentServiceStub(src).ReportShootings(
        incident_service_pb2.ReportShootingsRequest(
            requests=[b.shooting() for _ in range(POOLED_BATCH + 100)]
        ),
        metadata=b.ACTOR_METADATA,
        timeout=WAIT,
    )
    events, _ = export_all(src)
    broken = list(events)
    bad = POOLED_BATCH - 3
    broken[bad] = _changed(events[bad], state_json=_state_with(events[bad], injured=0.5))
    err = failure(lambda: imported(dst, broken))
    assert b.field_violations(err) == {
        f"events[{bad}].state_json": "is not a valid ShootingReported: injured must be int, not 0.5"
    }
    assert head_of(dst) == 0
    reply = imported(dst, events)
    # (On PostgreSQL the failed batch used up positions: they are never reused.)
    assert reply.imported == reply.last_position - reply.first_position + 1 == len(events)
    assert reply.last_position == head_of(dst)
    assert imported(dst, events).skipped == len(events)


# --- followers ----------------------------------------------------------------------------------


@BOTH_STORES
def test_subscribers_see_imported_events_as_they_are_committed(src, dst):
    populate(src)
    events, _ = export_all(src)
    subscriber = Subscriber(dst, pb.SubscribeRequest(from_end=True))
    try:
        subscriber.until_caught_up()
        import_in_batches(dst, events, 10)
        got = subscriber.until(lambda messages: len(events_of(messages)) >= len(events), WAIT)
    finally:
        subscriber.cancel()
    seen = events_of(got)[: len(events)]
    assert [(e.stream_id, e.stream_version) for e in seen] == [
        (e.stream_id, e.stream_version) for e in events
    ]
