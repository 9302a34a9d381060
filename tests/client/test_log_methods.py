"""EventLogService through the sync client: reads, paging iterators and subscriptions."""

from __future__ import annotations

import threading

import pytest
from incident_registry_client import (
    CaughtUp,
    Checkpoint,
    EventFilter,
    OutOfRangeError,
    PayloadFormat,
    ReadDirection,
    RecordedEvent,
    ShootingReported,
)

from tests.client.conftest import ANDERLECHT, IXELLES, report


def _report_many(client, count, **overrides):
    return [report(client, **overrides) for _ in range(count)]


def test_get_head_of_an_empty_then_a_written_log(client):
    empty = client.get_head()
    assert (empty.position, empty.recorded_at) == (0, None)
    written = report(client)
    head = client.get_head()
    assert head.position == written.position
    assert head.recorded_at is not None


def test_read_stream_forwards_backwards_and_payload_formats(client):
    incident_id = report(client).aggregate_id
    for killed in (1, 2):
        client.revise_casualties(incident_id=incident_id, killed=killed, injured=0, reason="r")

    window = client.read_stream(stream_id=incident_id, limit=2)
    assert [e.stream_version for e in window.events] == [1, 2]
    assert (window.next_version, window.stream_version) == (3, 3)

    backwards = client.read_stream(stream_id=incident_id, direction=ReadDirection.BACKWARDS)
    assert [e.stream_version for e in backwards.events] == [3, 2, 1]

    typed = client.read_stream(stream_id=incident_id, payload_format=PayloadFormat.TYPED)
    assert typed.events[0].payload_json == ""
    assert isinstance(typed.events[0].payload, ShootingReported)
    as_json = client.read_stream(stream_id=incident_id, payload_format=PayloadFormat.JSON)
    assert as_json.events[0].payload is None
    assert '"municipality_code":"21001"' in as_json.events[0].payload_json


def test_iter_stream_pages_through_a_stream(client):
    incident_id = report(client).aggregate_id
    for killed in range(1, 5):
        client.revise_casualties(incident_id=incident_id, killed=killed, injured=0, reason="r")
    versions = [e.stream_version for e in client.iter_stream(stream_id=incident_id, page_size=2)]
    assert versions == [1, 2, 3, 4, 5]


def test_read_all_pages_and_filters(client):
    written = _report_many(client, 3) + _report_many(client, 2, municipality_code=IXELLES)
    page = client.read_all(limit=2)
    assert [e.position for e in page.events] == [1, 2]
    assert (page.next_position, page.head_position) == (2, 5)

    anderlecht = EventFilter(tags=[f"municipality:{ANDERLECHT}"])
    filtered = client.read_all(filter=anderlecht)
    assert [e.position for e in filtered.events] == [w.position for w in written[:3]]

    newest = client.read_all(direction=ReadDirection.BACKWARDS, limit=1)
    assert [e.position for e in newest.events] == [5]


def test_iter_all_reads_the_whole_log_a_page_at_a_time(client, proxy, proxied):
    _report_many(client, 7)
    events = list(proxied.iter_all(page_size=3, filter=EventFilter(stream_types=["incident"])))
    assert [e.position for e in events] == list(range(1, 8))
    assert all(isinstance(e, RecordedEvent) for e in events)
    assert len(proxy.calls_of("ReadAll")) == 3


def test_subscribe_from_the_start_after_a_position_and_from_the_end(client):
    _report_many(client, 3)
    with client.subscribe(max_batch_size=2) as subscription:
        items = []
        for item in subscription:
            items.append(item)
            if isinstance(item, CaughtUp):
                break
        assert subscription.position == 3
    assert [getattr(i, "position", None) for i in items] == [1, 2, 3, 3]
    assert isinstance(items[-1], CaughtUp)

    with client.subscribe(after_position=2) as subscription:
        assert next(subscription).position == 3
        assert next(subscription) == CaughtUp(3)

    with client.subscribe(from_end=True) as subscription:
        assert next(subscription) == CaughtUp(3)
        report(client)
        live = next(subscription)
        assert isinstance(live, RecordedEvent)
        assert live.position == 4


def test_a_filtered_subscription_is_told_where_to_resume(client):
    _report_many(client, 2, municipality_code=IXELLES)
    ixelles_only = EventFilter(tags=[f"municipality:{ANDERLECHT}"])
    with client.subscribe(filter=ixelles_only) as subscription:
        first = next(subscription)
        assert first == Checkpoint(2)
        assert next(subscription) == CaughtUp(2)
        assert subscription.position == 2


def test_subscribe_rejects_two_starts_and_a_position_beyond_the_head(client):
    with pytest.raises(ValueError, match="either after_position or from_end"):
        client.subscribe(after_position=1, from_end=True)
    with client.subscribe(after_position=99) as subscription, pytest.raises(OutOfRangeError):
        next(subscription)
    assert subscription.closed


def test_close_stops_a_subscription_blocked_in_another_thread(client):
    subscription = client.subscribe(from_end=True)
    received = []

    def consume():
        received.extend(subscription)

    reader = threading.Thread(target=consume)
    reader.start()
    while not received:
        threading.Event().wait(0.01)
    subscription.close()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert received == [CaughtUp(0)]


def test_the_resume_position_is_that_of_the_last_item_yielded(client):
    for _ in range(5):
        report(client)
    with client.subscribe(max_batch_size=10) as subscription:
        assert subscription.position is None
        next(subscription)
        next(subscription)
        # All five arrived in one message; the consumer has seen two.
        assert subscription.position == 2
    with client.subscribe(after_position=subscription.position) as resumed:
        assert next(resumed).position == 3
