"""Violence waves over a real channel, on SQLite and on PostgreSQL.

Four shootings in three days in Anderlecht (the news story) make one wave: one WaveDetected in
the log — seen by ReadAll, Subscribe and ListWaves — and still one after the projection is
rebuilt, run again by a fresh runner, or crashes between recording the wave and committing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2 as log_pb,
)
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2_grpc,
    incident_pb2,
    projection_admin_service_pb2,
    projection_admin_service_pb2_grpc,
    wave_service_pb2_grpc,
)
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as stats_pb
from incident_registry_client.proto.incidents.v1 import wave_service_pb2 as pb

from projections.store import FAULTED, sqlite_store
from projections.waves import NAME
from projections.waves_model import WavesProjection, blocking_recorder, query_waves
from service.domain.errors import StoreUnavailableError
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.harness import ServerHarness
from tests.support.log_helpers import Subscriber, events_of, read_all_pages
from tests.support.projections import run_to_head, runner_for
from tests.support.stores import BOTH_STORES

ANDERLECHT, FOREST, SAINT_GILLES, IXELLES = "21001", "21007", "21013", "21009"
MIDI = "5341"
# Wednesday 27 November 2024, 06:10 in Brussels: shots near the Clemenceau metro station.
WEDNESDAY = datetime(2024, 11, 27, 5, 10, tzinfo=UTC)
REPORTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WAIT = 15.0
WAVES_ONLY = log_pb.EventFilter(event_types=["WaveDetected"])


@pytest.fixture
def wave_rule() -> WaveRule:
    return WaveRule()  # 3 shootings within 72 hours, by municipality


@pytest.fixture
def server(
    tmp_path: Path, backend_factory: Callable[[], EventStoreBackend], wave_rule: WaveRule
) -> Iterator[ServerHarness]:
    """A registry server that detects waves (the shared harness leaves detection off)."""
    harness = ServerHarness(
        tmp_path / "registry.sqlite", backend_factory=backend_factory, wave_rule=wave_rule
    ).start()
    yield harness
    harness.stop()


@pytest.fixture
def waves(channel):
    return wave_service_pb2_grpc.WaveServiceStub(channel)


@pytest.fixture
def log(channel):
    return event_log_service_pb2_grpc.EventLogServiceStub(channel)


def report(
    incidents, when: datetime, municipality: str = ANDERLECHT, **extra: Any
) -> tuple[str, int]:
    """Report a shooting; return (incident id, log position)."""
    reply = incidents.ReportShooting(
        b.shooting(
            occurred_at=b.ts(when),
            reported_at=b.ts(REPORTED),
            municipality_code=municipality,
            location=None,
            **extra,
        ),
        metadata=ACTOR_METADATA,
    )
    return reply.result.aggregate_id, reply.result.position


def four_shootings_in_three_days(
    incidents, municipalities=(ANDERLECHT,) * 4
) -> list[tuple[str, int]]:
    """Wednesday morning, two on Thursday morning, and a deadly one early on Friday."""
    hours = (0, 26, 27.5, 46)
    return [
        report(incidents, WEDNESDAY + timedelta(hours=h), municipality, killed=int(h == 46))
        for h, municipality in zip(hours, municipalities, strict=True)
    ]


def list_waves(waves, min_position: int = 0, **selection: Any) -> pb.ListWavesResponse:
    reply: pb.ListWavesResponse = waves.ListWaves(
        pb.ListWavesRequest(min_position=min_position, **selection), timeout=WAIT
    )
    return reply


def detected_in_log(log) -> list[Any]:
    events, _ = read_all_pages(log, log_filter=WAVES_ONLY)
    return events


def eventually(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Retry `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


# --- one wave, recorded once ----------------------------------------------------------------


@BOTH_STORES
def test_four_shootings_in_three_days_are_one_wave_in_the_log_and_the_read_model(
    server, incidents, waves, log, channel
):
    reported = four_shootings_in_three_days(incidents)
    ids = [incident_id for incident_id, _ in reported]
    last = reported[-1][1]

    (wave,) = list_waves(waves, last).waves
    assert wave.area_kind == stats_pb.AREA_KIND_MUNICIPALITY
    assert wave.area_code == ANDERLECHT
    assert list(wave.detected_incident_ids) == ids[:3]
    assert list(wave.incident_ids) == ids  # Friday's shooting joined the wave
    assert wave.first_occurred_at.ToDatetime(tzinfo=UTC) == WEDNESDAY
    assert wave.last_occurred_at.ToDatetime(tzinfo=UTC) == WEDNESDAY + timedelta(hours=46)
    assert (wave.min_shootings, wave.window_hours) == (3, 72)
    # Completed by the third shooting, recorded after it.
    assert wave.trigger_position == reported[2][1]
    assert wave.detected_position > wave.trigger_position

    (event,) = detected_in_log(log)
    assert event.position == wave.detected_position
    assert event.stream_id == wave.wave_id
    assert event.stream_type == "violence_wave"
    assert event.event_type == "WaveDetected"
    assert event.metadata.actor == "projection:waves"
    assert event.metadata.request_id == f"wave-detected:{wave.wave_id}"
    assert event.occurred_at == b.ts(WEDNESDAY + timedelta(hours=27.5))
    payload = event.wave_detected
    assert (payload.area_kind, payload.area_code) == ("municipality", ANDERLECHT)
    assert list(payload.incident_ids) == ids[:3]
    assert list(payload.municipality_codes) == [ANDERLECHT]
    assert (payload.min_shootings, payload.window_hours) == (3, 72)
    assert payload.trigger_position == wave.trigger_position
    assert json.loads(event.payload_json)["incident_ids"] == ids[:3]

    # Subscribers see it too, also through the municipality's and the zone's tags.
    for log_filter in (
        log_pb.EventFilter(stream_types=["violence_wave"]),
        log_pb.EventFilter(event_types=["WaveDetected"], tags=[f"police_zone:{MIDI}"]),
    ):
        subscriber = Subscriber(
            channel, log_pb.SubscribeRequest(from_start=True, filter=log_filter)
        )
        try:
            seen = events_of(subscriber.until_caught_up())
        finally:
            subscriber.cancel()
        assert [e.stream_id for e in seen] == [wave.wave_id]


@BOTH_STORES
def test_rebuilding_the_projection_records_no_second_wave(server, incidents, waves, log, tmp_path):
    reported = four_shootings_in_three_days(incidents)
    (before,) = list_waves(waves, reported[-1][1]).waves
    head = server.registry.backend.head()

    record = server.registry.waves.record
    recordings = []

    async def watched(command):
        recordings.append(await record(command))
        return recordings[-1]

    server.registry.waves.record = watched
    with server.channel() as channel:
        admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
        admin.RebuildProjection(
            projection_admin_service_pb2.RebuildProjectionRequest(name=NAME), timeout=WAIT
        )
    # The rebuilt model finds the same wave, and recording it replays the first recording.
    assert eventually(lambda: recordings)
    assert recordings[0].replayed
    assert recordings[0].position == before.detected_position
    rebuilt = eventually(lambda: list_waves(waves, head).waves)
    assert list(rebuilt) == [before]
    assert len(detected_in_log(log)) == 1
    assert server.registry.backend.head() == head

    # A fresh runner on the same log, with a view of its own, finds it again: nothing new.
    registry = server.registry
    view = sqlite_store(tmp_path / "fresh-views.sqlite")
    try:
        projection = WavesProjection(registry.waves.rule, blocking_recorder(registry.waves))
        runner = runner_for(registry.backend, registry.mapper, view, projection, page_size=2)
        assert run_to_head(runner)[0] == head
        with view.transaction(write=False) as tx:
            (fresh,) = query_waves(tx)
    finally:
        view.close()
    assert (str(fresh.wave_id), fresh.detected_position) == (
        before.wave_id,
        before.detected_position,
    )
    assert len(detected_in_log(log)) == 1
    assert server.registry.backend.head() == head


@BOTH_STORES
def test_a_crash_between_recording_and_committing_records_no_duplicate(
    server, incidents, waves, log
):
    record = server.registry.waves.record
    recorded = []

    async def record_then_crash(command):
        # The wave reaches the log; the batch that found it never commits.
        recorded.append(await record(command))
        msg = "the worker died here"
        raise RuntimeError(msg)

    server.registry.waves.record = record_then_crash
    reported = four_shootings_in_three_days(incidents)
    runner = server.projections.runner(NAME)
    assert eventually(lambda: runner.status == FAULTED)
    assert "the worker died here" in runner.error
    assert len(detected_in_log(log)) == 1
    with pytest.raises(grpc.RpcError) as failure:
        list_waves(waves, reported[-1][1])
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A restart retries the faulted batch: it finds the same wave, whose recording replays.
    server.restart()
    with server.channel() as channel:
        restarted = wave_service_pb2_grpc.WaveServiceStub(channel)
        (wave,) = list_waves(restarted, reported[-1][1]).waves
        assert len(detected_in_log(event_log_service_pb2_grpc.EventLogServiceStub(channel))) == 1
    assert wave.detected_position == recorded[0].position
    assert wave.wave_id == str(recorded[0].aggregate_id)


@BOTH_STORES
def test_a_store_failure_while_recording_is_retried_without_duplicate(
    server, incidents, waves, log
):
    record = server.registry.waves.record
    failures = []

    async def record_then_fail_once(command):
        result = await record(command)
        if not failures:
            failures.append(result)
            msg = "the answer was lost"
            raise StoreUnavailableError(msg)
        return result

    server.registry.waves.record = record_then_fail_once
    reported = four_shootings_in_three_days(incidents)
    (wave,) = list_waves(waves, reported[-1][1]).waves
    assert failures
    assert wave.detected_position == failures[0].position
    assert len(detected_in_log(log)) == 1


# --- other areas and rules ------------------------------------------------------------------


@pytest.mark.parametrize("wave_rule", [WaveRule(area_kind="police_zone")])
def test_by_police_zone_shootings_across_its_municipalities_are_one_wave(
    server, incidents, waves, log
):
    municipalities = (ANDERLECHT, FOREST, SAINT_GILLES, ANDERLECHT)
    reported = four_shootings_in_three_days(incidents, municipalities)
    report(incidents, WEDNESDAY + timedelta(hours=1), IXELLES)  # another zone
    (wave,) = list_waves(
        waves,
        server.registry.backend.head(),
        area_kind=stats_pb.AREA_KIND_POLICE_ZONE,
        area_codes=[MIDI],
    ).waves
    assert (wave.area_kind, wave.area_code) == (stats_pb.AREA_KIND_POLICE_ZONE, MIDI)
    assert len(wave.incident_ids) == 4
    (event,) = detected_in_log(log)
    assert list(event.wave_detected.municipality_codes) == sorted(municipalities[:3])
    assert event.wave_detected.incident_ids == [i for i, _ in reported[:3]]


def test_an_amendment_moving_a_shooting_into_the_area_completes_a_wave(server, incidents, waves):
    report(incidents, WEDNESDAY)
    report(incidents, WEDNESDAY + timedelta(hours=20))
    moved, _ = report(incidents, WEDNESDAY + timedelta(hours=30), IXELLES)
    assert list_waves(waves, server.registry.backend.head()).waves == []
    amended = incidents.AmendIncident(
        b.amendment(
            moved,
            "municipality_code",
            correction=incident_pb2.IncidentCorrection(municipality_code=ANDERLECHT),
        ),
        metadata=ACTOR_METADATA,
    )
    (wave,) = list_waves(waves, amended.result.position).waves
    assert wave.trigger_position == amended.result.position
    assert moved in wave.detected_incident_ids


def test_waves_are_listed_by_area_and_time_a_page_at_a_time(server, incidents, waves):
    for day, municipality in enumerate((ANDERLECHT, FOREST, IXELLES, SAINT_GILLES)):
        start = WEDNESDAY + timedelta(days=10 * day)
        for h in (0, 1, 2):
            report(incidents, start + timedelta(hours=h), municipality)
    head = server.registry.backend.head()
    every = list_waves(waves, head).waves
    assert [w.area_code for w in every] == [ANDERLECHT, FOREST, IXELLES, SAINT_GILLES]

    pages, token = [], ""
    while True:
        reply = list_waves(waves, head, page_size=3, page_token=token)
        pages.append(list(reply.waves))
        if not (token := reply.next_page_token):
            break
    assert [len(p) for p in pages] == [3, 1]
    assert [w for page in pages for w in page] == list(every)

    in_midi = list_waves(waves, area_kind=stats_pb.AREA_KIND_POLICE_ZONE, area_codes=[MIDI]).waves
    assert [w.area_code for w in in_midi] == [ANDERLECHT, FOREST, SAINT_GILLES]
    in_ixelles = list_waves(
        waves, area_kind=stats_pb.AREA_KIND_MUNICIPALITY, area_codes=[IXELLES]
    ).waves
    assert [w.area_code for w in in_ixelles] == [IXELLES]
    ranged = list_waves(
        waves,
        from_time=b.ts(WEDNESDAY + timedelta(days=10, hours=2)),
        to_time=b.ts(WEDNESDAY + timedelta(days=20)),
    ).waves
    assert [w.area_code for w in ranged] == [FOREST, IXELLES]


def test_invalid_selections_are_invalid_arguments(waves):
    cases = [
        (pb.ListWavesRequest(area_codes=[ANDERLECHT]), "area_kind"),
        (
            pb.ListWavesRequest(area_kind=stats_pb.AREA_KIND_MUNICIPALITY, area_codes=["99999"]),
            "area_codes[0]",
        ),
        (
            pb.ListWavesRequest(area_kind=stats_pb.AREA_KIND_POLICE_ZONE, area_codes=["0000"]),
            "area_codes[0]",
        ),
        (pb.ListWavesRequest(page_size=-1), "page_size"),
        (pb.ListWavesRequest(page_token="not-a-token"), "page_token"),
        (
            pb.ListWavesRequest(from_time=b.ts(WEDNESDAY), to_time=b.ts(WEDNESDAY - timedelta(1))),
            "to_time",
        ),
        (pb.ListWavesRequest(min_position=-1), "min_position"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as failure:
            waves.ListWaves(request, timeout=WAIT)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in field_violations(failure.value), field


def test_a_page_token_is_bound_to_its_selection(server, incidents, waves):
    for day in range(2):
        for h in (0, 1, 2):
            report(incidents, WEDNESDAY + timedelta(days=10 * day, hours=h))
    reply = list_waves(waves, server.registry.backend.head(), page_size=1)
    assert reply.next_page_token
    with pytest.raises(grpc.RpcError) as failure:
        list_waves(
            waves,
            page_size=1,
            page_token=reply.next_page_token,
            area_kind=stats_pb.AREA_KIND_MUNICIPALITY,
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
