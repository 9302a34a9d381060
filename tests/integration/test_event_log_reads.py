"""EventLogService reads over a real channel: GetHead, ReadAll, ReadStream and envelopes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2 as pb,
)
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2_grpc,
    events_pb2,
)

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, detail, field_violations
from tests.support.log_helpers import positions, read_all_pages, report_many, report_many_async
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

FORWARDS = pb.READ_DIRECTION_FORWARDS
BACKWARDS = pb.READ_DIRECTION_BACKWARDS


@pytest.fixture
def log(channel):
    return event_log_service_pb2_grpc.EventLogServiceStub(channel)


@dataclass
class Story:
    """A gang (position 1) and an incident with five events (positions 2 to 6)."""

    gang_id: str
    incident_id: str
    # (request, result, event_type, stream_type, payload field), in log order.
    writes: list[tuple[Any, Any, str, str, str]] = field(default_factory=list)


@pytest.fixture
def story(incidents, gangs) -> Story:
    gang_request = b.gang()
    gang_result = gangs.RegisterGang(gang_request, metadata=ACTOR_METADATA).result
    shooting = b.shooting()
    report = incidents.ReportShooting(shooting, metadata=ACTOR_METADATA).result
    incident_id = report.aggregate_id
    told = Story(gang_result.aggregate_id, incident_id)
    told.writes.append((gang_request, gang_result, "GangRegistered", "gang", "gang_registered"))
    told.writes.append((shooting, report, "ShootingReported", "incident", "shooting_reported"))
    for request, rpc, event_type, payload_field in (
        (
            b.casualties(incident_id),
            incidents.ReviseCasualties,
            "CasualtiesRevised",
            "casualties_revised",
        ),
        (b.amendment(incident_id), incidents.AmendIncident, "IncidentAmended", "incident_amended"),
        (
            b.attribution(incident_id, told.gang_id),
            incidents.AttributeToGang,
            "AttributedToGang",
            "attributed_to_gang",
        ),
        (
            b.retraction(incident_id, told.gang_id),
            incidents.RetractAttribution,
            "AttributionRetracted",
            "attribution_retracted",
        ),
    ):
        result = rpc(request, metadata=ACTOR_METADATA).result
        told.writes.append((request, result, event_type, "incident", payload_field))
    return told


def failure(rpc, request, code: grpc.StatusCode) -> grpc.RpcError:
    """Call a unary `rpc` and expect it to fail with `code`."""
    with pytest.raises(grpc.RpcError) as caught:
        rpc(request, timeout=5)
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def subscribe_failure(log, request: pb.SubscribeRequest, code: grpc.StatusCode) -> grpc.RpcError:
    """Open a subscription and expect it to end with `code` before any message."""
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(log.Subscribe(request, timeout=5)))
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def violation_fields(err: grpc.RpcError) -> list[str]:
    return sorted(field_violations(err))


def subscribed_events(log, request: pb.SubscribeRequest) -> list[events_pb2.EventEnvelope]:
    """The events of a subscription up to its first caught_up."""
    found: list[events_pb2.EventEnvelope] = []
    call = log.Subscribe(request, timeout=10)
    try:
        for message in call:
            if message.WhichOneof("message") == "caught_up":
                return found
            found.extend(message.events.events)
    finally:
        call.cancel()
    raise AssertionError("the subscription ended before catching up")


# --- GetHead ------------------------------------------------------------------------------


def test_get_head_of_an_empty_log_is_position_zero_without_time(log):
    got = log.GetHead(pb.GetHeadRequest())
    assert got.position == 0
    assert not got.HasField("recorded_at")


def test_get_head_is_the_last_write_and_its_recording_time(log, story):
    last_result = story.writes[-1][1]
    got = log.GetHead(pb.GetHeadRequest())
    assert got.position == last_result.position == 6
    (newest,) = log.ReadAll(pb.ReadAllRequest(direction=BACKWARDS, limit=1)).events
    assert newest.position == got.position
    assert got.recorded_at == newest.recorded_at
    recorded = got.recorded_at.ToDatetime(tzinfo=UTC)
    assert datetime.now(UTC) - timedelta(minutes=1) < recorded <= datetime.now(UTC)


# --- ReadAll ------------------------------------------------------------------------------


def test_read_all_of_an_empty_log_is_an_empty_last_page(log):
    for direction in (FORWARDS, BACKWARDS):
        page = log.ReadAll(pb.ReadAllRequest(direction=direction))
        assert (list(page.events), page.next_position, page.head_position) == ([], 0, 0)


def test_read_all_forwards_pages_through_the_log_until_next_position_is_zero(channel, log):
    report_many(channel, 7)
    pages = []
    position = 0
    while True:
        page = log.ReadAll(pb.ReadAllRequest(from_position=position, limit=3))
        pages.append((positions(list(page.events)), page.next_position, page.head_position))
        if not page.next_position:
            break
        position = page.next_position
    assert pages == [([1, 2, 3], 3, 7), ([4, 5, 6], 6, 7), ([7], 0, 7)]
    # from_position is exclusive; the head itself is a valid, empty, last page.
    assert positions(list(log.ReadAll(pb.ReadAllRequest(from_position=5)).events)) == [6, 7]
    at_head = log.ReadAll(pb.ReadAllRequest(from_position=7))
    assert (list(at_head.events), at_head.next_position) == ([], 0)


def test_read_all_backwards_pages_from_the_head_until_next_position_is_zero(channel, log):
    report_many(channel, 7)
    pages = []
    position = 0
    while True:
        page = log.ReadAll(pb.ReadAllRequest(from_position=position, direction=BACKWARDS, limit=3))
        pages.append((positions(list(page.events)), page.next_position, page.head_position))
        if not page.next_position:
            break
        position = page.next_position
    assert pages == [([7, 6, 5], 5, 7), ([4, 3, 2], 2, 7), ([1], 0, 7)]
    # Backwards, from_position is exclusive too: events before it, newest first.
    before_five = log.ReadAll(pb.ReadAllRequest(from_position=5, direction=BACKWARDS))
    assert positions(list(before_five.events)) == [4, 3, 2, 1]
    forwards, _ = read_all_pages(log, limit=2)
    backwards, _ = read_all_pages(log, limit=2, backwards=True)
    assert [e.event_id for e in backwards] == [e.event_id for e in reversed(forwards)]


def test_read_all_page_ending_exactly_at_the_end_of_the_log_says_next_position_zero(channel, log):
    report_many(channel, 6)
    last_forwards = log.ReadAll(pb.ReadAllRequest(from_position=3, limit=3))
    assert positions(list(last_forwards.events)) == [4, 5, 6]
    last_backwards = log.ReadAll(pb.ReadAllRequest(from_position=4, direction=BACKWARDS, limit=3))
    assert positions(list(last_backwards.events)) == [3, 2, 1]
    assert (last_forwards.next_position, last_backwards.next_position) == (0, 0)


def test_read_all_limit_zero_means_one_hundred_and_a_thousand_is_allowed(channel, log):
    report_many_async(channel, 105)
    forwards = log.ReadAll(pb.ReadAllRequest(limit=0))
    assert positions(list(forwards.events)) == list(range(1, 101))
    assert forwards.next_position == 100
    backwards = log.ReadAll(pb.ReadAllRequest(limit=0, direction=BACKWARDS))
    assert positions(list(backwards.events)) == list(range(105, 5, -1))
    assert backwards.next_position == 6
    everything = log.ReadAll(pb.ReadAllRequest(limit=1000))
    assert positions(list(everything.events)) == list(range(1, 106))
    assert everything.next_position == 0


def test_read_all_pages_large_events_within_the_message_size_limit(channel, log):
    report_many_async(channel, 250, description="x" * 10_000)
    everything, pages = read_all_pages(log, limit=1000)
    assert positions(everything) == list(range(1, 251))
    assert all(page.ByteSize() <= 4 * 1024 * 1024 for page in pages)


@pytest.mark.parametrize("limit", [-1, 1001, 2**31 - 1])
def test_read_all_limit_out_of_bounds_is_invalid_argument(log, limit):
    err = failure(log.ReadAll, pb.ReadAllRequest(limit=limit), grpc.StatusCode.INVALID_ARGUMENT)
    assert violation_fields(err) == ["limit"]


def test_read_all_from_a_negative_position_is_invalid_argument(log, story):
    for direction in (FORWARDS, BACKWARDS):
        err = failure(
            log.ReadAll,
            pb.ReadAllRequest(from_position=-1, direction=direction),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert violation_fields(err) == ["from_position"]


def test_read_all_from_beyond_the_head_is_out_of_range(log, story):
    for direction in (FORWARDS, BACKWARDS):
        err = failure(
            log.ReadAll,
            pb.ReadAllRequest(from_position=7, direction=direction),
            grpc.StatusCode.OUT_OF_RANGE,
        )
        assert "head of the log (6)" in err.details()
        assert violation_fields(err) == ["from_position"]


def test_read_all_of_an_empty_log_from_position_one_is_out_of_range(log):
    failure(log.ReadAll, pb.ReadAllRequest(from_position=1), grpc.StatusCode.OUT_OF_RANGE)


def test_read_all_reports_every_invalid_field_at_once(log):
    err = failure(
        log.ReadAll,
        pb.ReadAllRequest(from_position=-5, limit=5000, payload_format=42),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violation_fields(err) == ["from_position", "limit", "payload_format"]


# --- ReadStream ---------------------------------------------------------------------------


def _stream_pages(log, stream_id: str, *, backwards: bool, limit: int, start: int = 0):
    pages = []
    version = start
    while True:
        page = log.ReadStream(
            pb.ReadStreamRequest(
                stream_id=stream_id,
                from_version=version,
                direction=BACKWARDS if backwards else FORWARDS,
                limit=limit,
            )
        )
        pages.append(
            ([e.stream_version for e in page.events], page.next_version, page.stream_version)
        )
        if not page.next_version:
            return pages
        version = page.next_version


def test_read_stream_forwards_pages_by_next_version(log, story):
    assert _stream_pages(log, story.incident_id, backwards=False, limit=2) == [
        ([1, 2], 3, 5),
        ([3, 4], 5, 5),
        ([5], 0, 5),
    ]
    # From a version: that version first; a page ending at the last version is the last page.
    assert _stream_pages(log, story.incident_id, backwards=False, limit=2, start=2) == [
        ([2, 3], 4, 5),
        ([4, 5], 0, 5),
    ]


def test_read_stream_backwards_pages_by_next_version(log, story):
    assert _stream_pages(log, story.incident_id, backwards=True, limit=2) == [
        ([5, 4], 3, 5),
        ([3, 2], 1, 5),
        ([1], 0, 5),
    ]
    assert _stream_pages(log, story.incident_id, backwards=True, limit=10, start=3) == [
        ([3, 2, 1], 0, 5)
    ]


def test_read_stream_carries_log_positions_and_only_the_stream(log, story):
    page = log.ReadStream(pb.ReadStreamRequest(stream_id=story.incident_id))
    assert [e.position for e in page.events] == [2, 3, 4, 5, 6]
    assert {e.stream_id for e in page.events} == {story.incident_id}
    gang = log.ReadStream(pb.ReadStreamRequest(stream_id=story.gang_id))
    assert [(e.stream_type, e.stream_version, e.position) for e in gang.events] == [("gang", 1, 1)]
    assert (gang.next_version, gang.stream_version) == (0, 1)


def test_read_stream_of_an_unknown_stream_is_not_found(log, story):
    unknown = str(uuid4())
    err = failure(
        log.ReadStream, pb.ReadStreamRequest(stream_id=unknown), grpc.StatusCode.NOT_FOUND
    )
    info = detail(err, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("stream", unknown)


def test_read_stream_from_beyond_the_last_version_is_out_of_range(log, story):
    for direction in (FORWARDS, BACKWARDS):
        err = failure(
            log.ReadStream,
            pb.ReadStreamRequest(stream_id=story.incident_id, from_version=6, direction=direction),
            grpc.StatusCode.OUT_OF_RANGE,
        )
        assert violation_fields(err) == ["from_version"]
        assert "last version 5" in err.details()


@pytest.mark.parametrize(
    ("request_fields", "fields"),
    [
        ({"stream_id": "not-a-uuid"}, ["stream_id"]),
        ({"stream_id": ""}, ["stream_id"]),
        ({"stream_id": "STORY", "from_version": -1}, ["from_version"]),
        ({"stream_id": "STORY", "limit": 1001}, ["limit"]),
        ({"stream_id": "STORY", "limit": -3}, ["limit"]),
        ({"stream_id": "STORY", "payload_format": 9}, ["payload_format"]),
        (
            {"stream_id": "x", "from_version": -2, "limit": 1001},
            ["from_version", "limit", "stream_id"],
        ),
    ],
)
def test_read_stream_invalid_requests_name_their_fields(log, story, request_fields, fields):
    if request_fields["stream_id"] == "STORY":
        request_fields = {**request_fields, "stream_id": story.incident_id}
    err = failure(
        log.ReadStream, pb.ReadStreamRequest(**request_fields), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert violation_fields(err) == fields


# --- Envelopes ----------------------------------------------------------------------------


def test_every_envelope_field_is_filled_and_the_same_through_every_read(log, incidents, story):
    everything, _ = read_all_pages(log)
    assert len(everything) == len(story.writes) == 6
    for env, (request, result, event_type, stream_type, payload_field) in zip(
        everything, story.writes, strict=True
    ):
        payload = checks.envelope(
            env,
            event_type=event_type,
            stream_type=stream_type,
            stream_id=result.aggregate_id,
            stream_version=result.version,
            request_id=request.request_id,
            payload_field=payload_field,
        )
        assert env.position == result.position
        if event_type == "ShootingReported":
            assert env.occurred_at == request.occurred_at
            assert payload.municipality_code == b.ANDERLECHT
            assert payload.police_zone_code == b.MIDI_ZONE
            assert payload.description == request.description
        elif event_type == "CasualtiesRevised":
            assert (payload.killed, payload.injured) == (1, 0)
        elif event_type in {"AttributedToGang", "AttributionRetracted"}:
            assert payload.gang_id == story.gang_id
    # Event ids are distinct, derived from stream and version, and stable across reads.
    assert len({e.event_id for e in everything}) == 6
    again, _ = read_all_pages(log, limit=1)
    assert again == everything
    backwards, _ = read_all_pages(log, backwards=True)
    assert backwards == everything[::-1]
    # The same envelopes, byte for byte, from ReadStream, Subscribe and GetIncident.
    stream = log.ReadStream(pb.ReadStreamRequest(stream_id=story.incident_id)).events
    assert list(stream) == everything[1:]
    assert subscribed_events(log, pb.SubscribeRequest(from_start=True)) == everything
    history = incidents.GetIncident(b.get_incident(story.incident_id)).history
    assert list(history) == everything[1:]


def test_envelope_metadata_records_actor_correlation_and_causation_headers(log, incidents):
    request = b.shooting()
    headers = (*ACTOR_METADATA, ("x-correlation-id", "op-bluewave"), ("x-causation-id", "tip-17"))
    result = incidents.ReportShooting(request, metadata=headers).result
    (env,) = log.ReadStream(pb.ReadStreamRequest(stream_id=result.aggregate_id)).events
    assert env.metadata == events_pb2.EventMetadata(
        actor=b.ACTOR,
        correlation_id="op-bluewave",
        causation_id="tip-17",
        request_id=request.request_id,
    )
    anonymous = b.shooting()
    result = incidents.ReportShooting(anonymous).result
    (env,) = log.ReadAll(pb.ReadAllRequest(from_position=result.position - 1)).events
    assert env.metadata == events_pb2.EventMetadata(
        actor="",
        correlation_id=anonymous.request_id,
        causation_id=anonymous.request_id,
        request_id=anonymous.request_id,
    )


# --- PayloadFormat ------------------------------------------------------------------------


def _check_formats(both, typed, as_json, unspecified) -> None:
    assert unspecified == both
    assert len(both) == len(typed) == len(as_json) > 0
    for full, only_typed, only_json in zip(both, typed, as_json, strict=True):
        field_name = full.WhichOneof("payload")
        assert field_name
        assert full.payload_json
        # TYPED: the oneof, no JSON; everything else the same.
        assert only_typed.payload_json == ""
        assert only_typed.WhichOneof("payload") == field_name
        assert getattr(only_typed, field_name) == getattr(full, field_name)
        # JSON: payload_json only, equal to the typed payload.
        assert only_json.WhichOneof("payload") is None
        assert only_json.payload_json == full.payload_json
        payload = getattr(full, field_name)
        parsed = json_format.ParseDict(json.loads(only_json.payload_json), type(payload)())
        assert parsed == payload
        for stripped in (only_typed, only_json):
            for name in (
                "event_id",
                "stream_id",
                "stream_type",
                "stream_version",
                "position",
                "event_type",
                "schema_version",
                "occurred_at",
                "recorded_at",
                "metadata",
            ):
                assert getattr(stripped, name) == getattr(full, name), name


FORMATS = (
    pb.PAYLOAD_FORMAT_BOTH,
    pb.PAYLOAD_FORMAT_TYPED,
    pb.PAYLOAD_FORMAT_JSON,
    pb.PAYLOAD_FORMAT_UNSPECIFIED,
)


def test_payload_format_in_read_all(log, story):
    _check_formats(
        *(list(log.ReadAll(pb.ReadAllRequest(payload_format=f)).events) for f in FORMATS)
    )


def test_payload_format_in_read_stream(log, story):
    _check_formats(
        *(
            list(
                log.ReadStream(
                    pb.ReadStreamRequest(stream_id=story.incident_id, payload_format=f)
                ).events
            )
            for f in FORMATS
        )
    )


def test_payload_format_in_subscribe(log, story):
    _check_formats(
        *(
            subscribed_events(log, pb.SubscribeRequest(from_start=True, payload_format=f))
            for f in FORMATS
        )
    )


def test_unknown_payload_format_is_invalid_argument_everywhere(log, story):
    err = failure(
        log.ReadAll, pb.ReadAllRequest(payload_format=7), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert violation_fields(err) == ["payload_format"]
    err = subscribe_failure(
        log, pb.SubscribeRequest(payload_format=7), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert violation_fields(err) == ["payload_format"]
