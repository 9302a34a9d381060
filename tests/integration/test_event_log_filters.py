"""EventFilter over a real channel: event types AND stream types AND tags, in reads and live."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2 as pb,
)
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2_grpc,
    incident_pb2,
    incident_service_pb2,
)

from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.log_helpers import (
    Subscriber,
    events_of,
    kinds,
    positions,
    read_all_pages,
)
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

# Brussels: zone 5341 (Midi) = 21001 Anderlecht, 21007 Forest, 21013 Saint-Gilles;
# zone 5339 = 21004 Bruxelles, 21009 Ixelles.
ANDERLECHT, FOREST, SAINT_GILLES = "21001", "21007", "21013"
BRUSSELS, IXELLES = "21004", "21009"


@pytest.fixture
def log(channel):
    return event_log_service_pb2_grpc.EventLogServiceStub(channel)


@dataclass
class World:
    """Nine events at known positions (see the `world` fixture)."""

    gang_id: str
    a: str  # reported in Anderlecht, attributed to the gang, then retracted
    b: str  # reported in Ixelles
    c: str  # reported in Forest, then moved to Ixelles


def _move(incident_id: str, municipality: str) -> incident_service_pb2.AmendIncidentRequest:
    """An amendment moving the incident to another municipality."""
    return b.amendment(
        incident_id,
        "municipality_code",
        correction=incident_pb2.IncidentCorrection(municipality_code=municipality),
    )


@pytest.fixture
def world(incidents, gangs) -> World:
    def write(rpc, request) -> int:
        return int(rpc(request, metadata=ACTOR_METADATA).result.position)

    gang_request = b.gang(territory_municipality_codes=[BRUSSELS])
    gang_id = gangs.RegisterGang(gang_request, metadata=ACTOR_METADATA).result.aggregate_id  # 1
    ids = [
        incidents.ReportShooting(
            b.shooting(municipality_code=code), metadata=ACTOR_METADATA
        ).result.aggregate_id
        for code in (ANDERLECHT, IXELLES, FOREST)  # 2, 3, 4
    ]
    a, bb, c = ids
    assert write(incidents.AttributeToGang, b.attribution(a, gang_id)) == 5
    assert write(incidents.ReviseCasualties, b.casualties(bb)) == 6
    assert write(incidents.AmendIncident, _move(c, IXELLES)) == 7
    assert write(incidents.ReviseCasualties, b.casualties(c)) == 8
    assert write(incidents.RetractAttribution, b.retraction(a, gang_id)) == 9
    return World(gang_id, a, bb, c)


def _filter(world: World, spec: dict[str, list[str]]) -> pb.EventFilter:
    tags = [t.replace("GANG", world.gang_id) for t in spec.get("tags", [])]
    tags = [
        t.replace("UPPER", world.gang_id.upper()).replace("HEX", UUID(world.gang_id).hex)
        for t in tags
    ]
    return pb.EventFilter(
        event_types=spec.get("event_types", []),
        stream_types=spec.get("stream_types", []),
        tags=tags,
    )


FILTERS = [
    # One kind at a time.
    ({}, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ({"event_types": ["ShootingReported"]}, [2, 3, 4]),
    ({"event_types": ["ShootingReported", "CasualtiesRevised"]}, [2, 3, 4, 6, 8]),
    ({"event_types": ["UnifiedCommandEnded"]}, []),
    ({"stream_types": ["gang"]}, [1]),
    ({"stream_types": ["incident"]}, [2, 3, 4, 5, 6, 7, 8, 9]),
    ({"stream_types": ["gang", "incident"]}, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ({"stream_types": ["asset_case", "unified_command"]}, []),
    ({"tags": [f"municipality:{ANDERLECHT}"]}, [2, 5, 9]),
    ({"tags": [f"municipality:{BRUSSELS}"]}, [1]),
    # The amendment that moved incident c is tagged with both municipalities; the events
    # after it only with the new one, those before only with the old one.
    ({"tags": [f"municipality:{FOREST}"]}, [4, 7]),
    ({"tags": [f"municipality:{IXELLES}"]}, [3, 6, 7, 8]),
    ({"tags": [f"municipality:{SAINT_GILLES}"]}, []),
    # A police zone stands for its municipalities.
    ({"tags": ["police_zone:5341"]}, [2, 4, 5, 7, 9]),
    ({"tags": ["police_zone:5339"]}, [1, 3, 6, 7, 8]),
    ({"tags": ["police_zone:5343"]}, []),
    # The gang's own events, the attribution and the retraction that removed the tag.
    ({"tags": ["gang:GANG"]}, [1, 5, 9]),
    ({"tags": ["gang:UPPER"]}, [1, 5, 9]),
    ({"tags": ["gang:HEX"]}, [1, 5, 9]),
    ({"tags": ["gang:00000000-0000-4000-8000-000000000000"]}, []),
    # Within a kind, any value matches.
    ({"tags": [f"municipality:{FOREST}", "gang:GANG"]}, [1, 4, 5, 7, 9]),
    ({"tags": ["police_zone:5341", f"municipality:{ANDERLECHT}"]}, [2, 4, 5, 7, 9]),
    # Kinds combine with AND.
    (
        {
            "event_types": ["ShootingReported", "CasualtiesRevised"],
            "stream_types": ["incident"],
            "tags": ["police_zone:5341"],
        },
        [2, 4],
    ),
    ({"event_types": ["AttributedToGang", "AttributionRetracted"], "tags": ["gang:GANG"]}, [5, 9]),
    ({"event_types": ["IncidentAmended"], "tags": [f"municipality:{IXELLES}"]}, [7]),
    ({"event_types": ["CasualtiesRevised"], "tags": ["police_zone:5339"]}, [6, 8]),
    ({"stream_types": ["gang"], "tags": ["police_zone:5339"]}, [1]),
    ({"stream_types": ["gang"], "tags": ["police_zone:5341"]}, []),
    ({"event_types": ["ShootingReported"], "stream_types": ["gang"]}, []),
    ({"event_types": ["GangRegistered"], "tags": [f"municipality:{ANDERLECHT}"]}, []),
]
FILTER_IDS = [
    ";".join(f"{k}={','.join(v)}" for k, v in spec.items()) or "empty" for spec, _ in FILTERS
]


@pytest.mark.parametrize(("spec", "expected"), FILTERS, ids=FILTER_IDS)
def test_read_all_filters(log, world, spec, expected):
    log_filter = _filter(world, spec)
    page = log.ReadAll(pb.ReadAllRequest(filter=log_filter))
    assert positions(list(page.events)) == expected
    assert page.head_position == 9
    assert page.next_position == 0
    backwards = log.ReadAll(
        pb.ReadAllRequest(filter=log_filter, direction=pb.READ_DIRECTION_BACKWARDS)
    )
    assert positions(list(backwards.events)) == expected[::-1]
    # Paging through a filtered log one event at a time finds the same events.
    paged, _ = read_all_pages(log, limit=1, log_filter=log_filter)
    assert positions(paged) == expected
    paged_back, _ = read_all_pages(log, limit=2, log_filter=log_filter, backwards=True)
    assert positions(paged_back) == expected[::-1]


@pytest.mark.parametrize(("spec", "expected"), FILTERS, ids=FILTER_IDS)
def test_subscribe_filters_and_checkpoints_the_skipped_events(channel, world, spec, expected):
    subscriber = Subscriber(
        channel, pb.SubscribeRequest(from_start=True, filter=_filter(world, spec))
    )
    try:
        messages = subscriber.until_caught_up()
    finally:
        subscriber.cancel()
    assert positions(events_of(messages)) == expected
    # Catching up covers the whole log: skipped events end in a checkpoint at the head.
    if expected and expected[-1] == 9:
        # The last event sent is the head: it covers the skipped events before it.
        assert kinds(messages) == ["events", "caught_up"]
    elif expected:
        assert kinds(messages) == ["events", "checkpoint", "caught_up"]
    else:
        assert kinds(messages) == ["checkpoint", "caught_up"]
    assert messages[-1].caught_up.position == 9
    if kinds(messages)[-2] == "checkpoint":
        assert messages[-2].checkpoint.position == 9


def test_live_subscription_follows_a_municipality_through_an_amendment(channel, incidents, world):
    """A subscriber to zone 5341 sees an incident moved into it, and not after it moves out."""
    subscriber = Subscriber(
        channel,
        pb.SubscribeRequest(from_end=True, filter=pb.EventFilter(tags=["police_zone:5341"])),
    )
    try:
        (caught_up,) = subscriber.until_caught_up()
        assert caught_up.caught_up.position == 9
        # Outside the zone: skipped. Moved into the zone: the amendment is seen.
        incidents.ReviseCasualties(b.casualties(world.b), metadata=ACTOR_METADATA)  # 10
        incidents.AmendIncident(_move(world.b, SAINT_GILLES), metadata=ACTOR_METADATA)  # 11
        incidents.AmendIncident(b.amendment(world.b), metadata=ACTOR_METADATA)  # 12
        # Moved out of the zone: the move is seen, what follows is not.
        incidents.AmendIncident(_move(world.a, IXELLES), metadata=ACTOR_METADATA)  # 13
        incidents.ReviseCasualties(b.casualties(world.a), metadata=ACTOR_METADATA)  # 14
        incidents.ReportShooting(  # 15
            b.shooting(municipality_code=FOREST), metadata=ACTOR_METADATA
        )
        messages = subscriber.until(lambda got: 15 in positions(events_of(got)), timeout=5)
        assert positions(events_of(messages)) == [11, 12, 13, 15]
        got = events_of(messages)
        assert [(e.stream_id, e.event_type) for e in got[:3]] == [
            (world.b, "IncidentAmended"),
            (world.b, "IncidentAmended"),
            (world.a, "IncidentAmended"),
        ]
    finally:
        subscriber.cancel()


def test_gang_subscription_sees_the_attribution_and_its_retraction_live(
    channel, incidents, gangs, world
):
    other_gang = gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result  # 10
    subscriber = Subscriber(
        channel,
        pb.SubscribeRequest(
            after_position=9, filter=pb.EventFilter(tags=[f"gang:{world.gang_id}"])
        ),
    )
    try:
        first = subscriber.until_caught_up()
        assert kinds(first) == ["checkpoint", "caught_up"]
        assert first[0].checkpoint.position == 10
        incidents.AttributeToGang(  # 11: the other gang, not followed
            b.attribution(world.b, other_gang.aggregate_id), metadata=ACTOR_METADATA
        )
        incidents.AttributeToGang(b.attribution(world.b, world.gang_id), metadata=ACTOR_METADATA)
        incidents.ReviseCasualties(b.casualties(world.b), metadata=ACTOR_METADATA)  # 13: tagged
        incidents.RetractAttribution(  # 14
            b.retraction(world.b, world.gang_id), metadata=ACTOR_METADATA
        )
        incidents.ReviseCasualties(b.casualties(world.b), metadata=ACTOR_METADATA)  # 15: not
        incidents.RetractAttribution(  # 16: the other gang
            b.retraction(world.b, other_gang.aggregate_id), metadata=ACTOR_METADATA
        )
        messages = subscriber.until(lambda got: 14 in positions(events_of(got)), timeout=5)
        got = events_of(messages)
        assert [(e.position, e.event_type) for e in got] == [
            (12, "AttributedToGang"),
            (13, "CasualtiesRevised"),
            (14, "AttributionRetracted"),
        ]
        assert got[0].attributed_to_gang.gang_id == world.gang_id
        assert got[2].attribution_retracted.gang_id == world.gang_id
        later = log_read(channel, pb.EventFilter(tags=[f"gang:{other_gang.aggregate_id}"]))
        # Incident b was attributed to the other gang from 11 to 16: all its events are tagged.
        assert later == [10, 11, 12, 13, 14, 15, 16]
    finally:
        subscriber.cancel()


def log_read(channel, log_filter: pb.EventFilter) -> list[int]:
    stub = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    return positions(list(stub.ReadAll(pb.ReadAllRequest(filter=log_filter)).events))


# --- malformed filters --------------------------------------------------------------------

MALFORMED = [
    ({"event_types": ["Nope"]}, {"filter.event_types[0]": "unknown event type 'Nope'"}),
    (
        {"event_types": ["ShootingReported", "shooting_reported"]},
        {"filter.event_types[1]": "unknown event type"},
    ),
    ({"stream_types": ["incidents"]}, {"filter.stream_types[0]": "unknown stream type"}),
    ({"stream_types": ["gang", ""]}, {"filter.stream_types[1]": "unknown stream type"}),
    ({"tags": ["municipality"]}, {"filter.tags[0]": "must be municipality:<code>"}),
    ({"tags": ["district:1000"]}, {"filter.tags[0]": "must be municipality:<code>"}),
    ({"tags": ["gang:"]}, {"filter.tags[0]": "must be municipality:<code>"}),
    ({"tags": [""]}, {"filter.tags[0]": "must be municipality:<code>"}),
    ({"tags": ["municipality:99999"]}, {"filter.tags[0]": "unknown municipality '99999'"}),
    ({"tags": ["police_zone:9999"]}, {"filter.tags[0]": "unknown police zone '9999'"}),
    ({"tags": [f"police_zone:{ANDERLECHT}"]}, {"filter.tags[0]": "unknown police zone"}),
    ({"tags": ["gang:not-a-uuid"]}, {"filter.tags[0]": "gang id must be a UUID"}),
    (
        {
            "event_types": ["ShootingReported", "Nope"],
            "stream_types": ["incident", "incidents"],
            "tags": ["police_zone:5341", "gang:42", "municipality:0"],
        },
        {
            "filter.event_types[1]": "unknown event type",
            "filter.stream_types[1]": "unknown stream type",
            "filter.tags[1]": "gang id must be a UUID",
            "filter.tags[2]": "unknown municipality",
        },
    ),
]


@pytest.mark.parametrize(("spec", "violations"), MALFORMED)
def test_malformed_filters_are_invalid_argument_in_read_all(log, world, spec, violations):
    with pytest.raises(grpc.RpcError) as caught:
        log.ReadAll(pb.ReadAllRequest(filter=pb.EventFilter(**spec)), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = field_violations(caught.value)
    assert sorted(got) == sorted(violations)
    for name, text in violations.items():
        assert text in got[name], got


@pytest.mark.parametrize(("spec", "violations"), MALFORMED)
def test_malformed_filters_are_invalid_argument_in_subscribe(log, world, spec, violations):
    call = log.Subscribe(
        pb.SubscribeRequest(from_start=True, filter=pb.EventFilter(**spec)), timeout=5
    )
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(call))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = field_violations(caught.value)
    assert sorted(got) == sorted(violations)
    for name, text in violations.items():
        assert text in got[name], got


def test_invalid_limits_and_filters_are_reported_together(log):
    bad_filter = pb.EventFilter(tags=["gang:nope"])
    with pytest.raises(grpc.RpcError) as caught:
        log.ReadAll(pb.ReadAllRequest(limit=1001, filter=bad_filter), timeout=5)
    assert sorted(field_violations(caught.value)) == ["filter.tags[0]", "limit"]
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(log.Subscribe(pb.SubscribeRequest(max_batch_size=-1, filter=bad_filter))))
    assert sorted(field_violations(caught.value)) == ["filter.tags[0]", "max_batch_size"]
