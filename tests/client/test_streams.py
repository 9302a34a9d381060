"""Streams and paging iterators resume after a dropped connection: no gaps, no duplicates."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from incident_registry_client import (
    AreaKind,
    AsyncRegistryClient,
    CaughtUp,
    Checkpoint,
    DeadlineExceededError,
    EventFilter,
    PeriodKind,
    RecordedEvent,
    RegistryClient,
    RetryPolicy,
    Stream,
    UnavailableError,
)
from incident_registry_client._rpcs import event_log
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    incident_query_service_pb2,
)

from tests.client.conftest import ACTOR, ANDERLECHT, FAST_RETRY, IXELLES, report
from tests.client.proxy import Abort, Cut

UNAVAILABLE = Abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
PATIENT = RetryPolicy(max_attempts=20, initial_backoff=0.02, max_backoff=0.2)
"""Enough attempts to span a server restart."""


def positions(items):
    return [item.position for item in items if isinstance(item, RecordedEvent)]


def take_until(stream, done):
    """Items of `stream` up to and including the first for which `done(item)` holds."""
    taken = []
    for item in stream:
        taken.append(item)
        if done(item):
            return taken
    return taken


def subscribe_requests(proxy):
    return [
        event_log_service_pb2.SubscribeRequest.FromString(call.request)
        for call in proxy.calls_of("Subscribe")
    ]


def test_a_subscription_resumes_after_a_server_restart(fixed_port_server):
    with RegistryClient(fixed_port_server.target, actor=ACTOR, retry=PATIENT) as registry:
        for _ in range(3):
            report(registry)
        with registry.subscribe(max_batch_size=2) as subscription:
            before = take_until(subscription, lambda item: item == CaughtUp(3))
            fixed_port_server.restart()  # ends the stream with UNAVAILABLE, same port
            for _ in range(2):
                report(registry)
            after = take_until(
                subscription, lambda item: isinstance(item, RecordedEvent) and item.position == 5
            )
            assert subscription.reconnects >= 1
            assert subscription.position == 5
    assert positions(before) + positions(after) == [1, 2, 3, 4, 5]


def test_a_subscription_cut_mid_stream_resumes_after_the_last_event(client, proxy):
    for _ in range(5):
        report(client)
    proxy.fail("Subscribe", Cut(after=2))
    with (
        RegistryClient(proxy.target, retry=FAST_RETRY) as registry,
        registry.subscribe(max_batch_size=1) as subscription,
    ):
        items = take_until(subscription, lambda item: isinstance(item, CaughtUp))
        assert subscription.reconnects == 1
    assert positions(items) == [1, 2, 3, 4, 5]
    first, resumed = subscribe_requests(proxy)
    assert first.WhichOneof("start") == "from_start"
    assert (resumed.WhichOneof("start"), resumed.after_position) == ("after_position", 2)
    assert resumed.max_batch_size == 1


def test_a_filtered_subscription_resumes_after_its_checkpoint(client, proxy):
    report(client)  # position 1, in Anderlecht
    for _ in range(3):
        report(client, municipality_code=IXELLES)  # positions 2-4, skipped by the filter
    proxy.fail("Subscribe", Cut(after=2))  # after the event and the checkpoint
    anderlecht = EventFilter(tags=[f"municipality:{ANDERLECHT}"])
    with (
        RegistryClient(proxy.target, retry=FAST_RETRY) as registry,
        registry.subscribe(filter=anderlecht) as subscription,
    ):
        items = take_until(subscription, lambda item: isinstance(item, CaughtUp))
        assert subscription.reconnects == 1
    assert positions(items) == [1]
    assert items[1:] == [Checkpoint(4), CaughtUp(4)]
    resumed = subscribe_requests(proxy)[-1]
    assert resumed.after_position == 4  # the skipped positions are not read again
    assert list(resumed.filter.tags) == [f"municipality:{ANDERLECHT}"]


def test_a_subscription_gives_up_after_consecutive_failures(client, proxy):
    proxy.fail("Subscribe", *[UNAVAILABLE] * FAST_RETRY.max_attempts)
    with RegistryClient(proxy.target, retry=FAST_RETRY) as registry:
        subscription = registry.subscribe()
        with pytest.raises(UnavailableError):
            next(subscription)
        assert subscription.closed
    assert len(proxy.calls_of("Subscribe")) == FAST_RETRY.max_attempts


def test_progress_resets_the_failure_count(client, proxy):
    for _ in range(4):
        report(client)
    # More cuts than max_attempts in total, but each after one more event.
    proxy.fail("Subscribe", *[Cut(after=1)] * (FAST_RETRY.max_attempts + 1))
    with (
        RegistryClient(proxy.target, retry=FAST_RETRY) as registry,
        registry.subscribe(max_batch_size=1) as subscription,
    ):
        items = take_until(subscription, lambda item: isinstance(item, CaughtUp))
    assert positions(items) == [1, 2, 3, 4]


def test_a_watch_reconnects_with_a_fresh_snapshot(fixed_port_server):
    with RegistryClient(fixed_port_server.target, retry=PATIENT) as registry:
        first = report(registry)
        with registry.watch_statistics(
            area_kind=AreaKind.MUNICIPALITY,
            period_kind=PeriodKind.YEAR,
            min_position=first.position,
        ) as watch:
            assert next(watch).snapshot
            fixed_port_server.restart()
            second = report(registry, municipality_code=IXELLES)
            update = next(watch)
            while update.position < second.position:
                update = next(watch)
            assert watch.reconnects >= 1
    assert update.totals.incidents == 2


def test_paging_iterators_retry_the_page_that_failed(client, proxy):
    for _ in range(5):
        report(client)
    with RegistryClient(proxy.target, retry=FAST_RETRY) as registry:
        events = registry.iter_all(page_size=2)
        assert next(events).position == 1
        proxy.fail("ReadAll", UNAVAILABLE)  # the second page fails once
        assert [e.position for e in events] == [2, 3, 4, 5]
        read_from = [
            event_log_service_pb2.ReadAllRequest.FromString(call.request).from_position
            for call in proxy.calls_of("ReadAll")
        ]
        assert read_from == [0, 2, 2, 4]

        proxy.fail("ListIncidents", Abort(), UNAVAILABLE)  # the first page fails twice
        listed = list(registry.iter_incidents(page_size=2, min_position=5))
        assert len({i.incident_id for i in listed}) == len(listed) == 5
        tokens = [
            incident_query_service_pb2.ListIncidentsRequest.FromString(call.request).page_token
            for call in proxy.calls_of("ListIncidents")
        ]
        assert tokens[:3] == ["", "", ""]
        assert len(tokens) == 5


def test_the_async_subscription_resumes_too(client, proxy):
    for _ in range(4):
        report(client)
    proxy.fail("Subscribe", Cut(after=1), Cut(after=2))

    async def scenario():
        async with (
            AsyncRegistryClient(proxy.target, retry=FAST_RETRY) as registry,
            registry.subscribe(max_batch_size=1) as subscription,
        ):
            items = []
            async for item in subscription:
                items.append(item)
                if isinstance(item, CaughtUp):
                    break
            return items, subscription.reconnects

    items, reconnects = asyncio.run(scenario())
    assert positions(items) == [1, 2, 3, 4]
    assert reconnects == 2
    starts = [r.after_position for r in subscribe_requests(proxy)[1:]]
    assert starts == [1, 3]


class _Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection dropped"

    def trailing_metadata(self):
        return ()


class _DroppingCall:
    """A stream that drops its connection after `seconds`, without a message."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __next__(self):
        time.sleep(self.seconds)
        raise _Unavailable

    def cancel(self):
        return True


def test_a_stream_timeout_spans_its_reconnects():
    opened = []

    def open_call(request, timeout):
        opened.append(timeout)
        return _DroppingCall(0.3)

    call = event_log.subscribe(timeout=0.5)
    stream = Stream(call, open_call, RetryPolicy(max_attempts=10, initial_backoff=0))
    with pytest.raises(DeadlineExceededError, match=r"timeout of 0\.5 s"):
        next(stream)
    assert len(opened) == 2
    assert opened[0] == 0.5
    assert 0 < opened[1] < 0.25
