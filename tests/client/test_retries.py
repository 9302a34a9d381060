"""Retries: UNAVAILABLE for every call (writes reuse their request id), deadlines for reads."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from incident_registry_client import (
    AsyncRegistryClient,
    DeadlineExceededError,
    InvalidArgumentError,
    RegistryClient,
    RetryPolicy,
    TimePrecision,
    UnavailableError,
    Weapon,
    WeaponKind,
)
from incident_registry_client.errors import ResourceExhaustedError, StatusDetails
from incident_registry_client.proto.incidents.v1 import incident_service_pb2

from tests.client.conftest import ACTOR, FAST_RETRY, hours_ago, report
from tests.client.proxy import Abort, Lose, Stall
from tests.client.test_errors import details_metadata

UNAVAILABLE = Abort(grpc.StatusCode.UNAVAILABLE, "connection reset")


def request_ids(proxy, rpc="ReportShooting"):
    return [
        incident_service_pb2.ReportShootingRequest.FromString(call.request).request_id
        for call in proxy.calls_of(rpc)
    ]


def test_a_write_is_retried_on_unavailable_with_the_same_request_id(proxy, proxied):
    proxy.fail("ReportShooting", UNAVAILABLE, UNAVAILABLE)
    written = report(proxied)
    assert not written.replayed
    ids = request_ids(proxy)
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert proxied.get_incident(incident_id=written.aggregate_id).state.version == 1


def test_a_retried_write_whose_reply_was_lost_is_replayed_not_repeated(proxy, proxied, client):
    proxy.fail("ReportShooting", Lose())
    written = report(proxied)
    assert written.replayed  # the first attempt landed; the retry found it
    assert len(set(request_ids(proxy))) == 1
    assert client.get_head().position == written.position == 1


def test_retries_give_up_after_max_attempts(proxy, proxied):
    proxy.fail("ReportShooting", *[UNAVAILABLE] * FAST_RETRY.max_attempts)
    with pytest.raises(UnavailableError, match="connection reset"):
        report(proxied)
    assert len(proxy.calls_of("ReportShooting")) == FAST_RETRY.max_attempts
    assert len(set(request_ids(proxy))) == 1
    assert proxied.get_head().position == 0


def test_reads_are_retried_on_unavailable(proxy, proxied):
    proxy.fail("GetHead", UNAVAILABLE)
    assert proxied.get_head().position == 0
    assert len(proxy.calls_of("GetHead")) == 2


def test_a_read_is_retried_after_its_deadline(proxy, proxied, client):
    written = report(client)
    proxy.fail("GetIncident", Stall(1.0))
    fetched = proxied.get_incident(incident_id=written.aggregate_id, timeout=0.3)
    assert fetched.state.incident_id == written.aggregate_id
    assert len(proxy.calls_of("GetIncident")) == 2


def test_a_write_is_not_retried_after_its_deadline(proxy, proxied):
    proxy.fail("ReportShooting", Stall(1.0))
    with pytest.raises(DeadlineExceededError):
        report(proxied, timeout=0.3)
    assert len(proxy.calls_of("ReportShooting")) == 1


def test_other_errors_are_not_retried(proxy, proxied):
    with pytest.raises(InvalidArgumentError):
        report(proxied, weapons=[Weapon(WeaponKind.HANDGUN, 0)])
    assert len(proxy.calls_of("ReportShooting")) == 1


def throttled(seconds: float) -> Abort:
    """A refusal by a per-caller limit, as the server sends it: with a RetryInfo delay."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(seconds * 1e9))
    retry_info = error_details_pb2.RetryInfo(retry_delay=delay)
    return Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "limit", details_metadata(retry_info))


def test_a_call_refused_by_a_limit_is_retried_after_the_delay_asked(proxy, proxied):
    proxy.fail("ReportShooting", throttled(0.02), throttled(0.02))
    written = report(proxied)
    assert not written.replayed
    ids = request_ids(proxy)
    assert len(ids) == 3
    assert len(set(ids)) == 1
    proxy.fail("GetHead", throttled(0.02))
    assert proxied.get_head().position == written.position
    assert len(proxy.calls_of("GetHead")) == 2


def test_resource_exhausted_is_not_retried_without_a_delay_or_with_a_longer_one(proxy, proxied):
    too_large = Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than max")
    proxy.fail("GetHead", too_large, throttled(FAST_RETRY.max_backoff * 10))
    with pytest.raises(ResourceExhaustedError, match="larger than max"):
        proxied.get_head()
    with pytest.raises(ResourceExhaustedError) as raised:
        proxied.get_head()
    assert raised.value.details.retry_delay is not None
    assert len(proxy.calls_of("GetHead")) == 2


def test_the_client_default_deadline_applies_to_each_attempt(proxy):
    with RegistryClient(proxy.target, timeout=0.3, retry=FAST_RETRY) as registry:
        proxy.fail("GetHead", Stall(1.0))
        assert registry.get_head().position == 0
    assert len(proxy.calls_of("GetHead")) == 2


def test_the_async_client_retries_the_same_way(proxy):
    async def scenario():
        async with AsyncRegistryClient(proxy.target, actor=ACTOR, retry=FAST_RETRY) as registry:
            proxy.fail("ReportShooting", UNAVAILABLE, Lose())
            written = await registry.report_shooting(
                occurred_at=hours_ago(1),
                occurred_at_precision=TimePrecision.MINUTE,
                municipality_code="21001",
            )
            proxy.fail("GetHead", Stall(1.0))
            head = await registry.get_head(timeout=0.3)
            proxy.fail("ReportShooting", Stall(1.0))
            with pytest.raises(DeadlineExceededError):
                await registry.report_shooting(
                    occurred_at=hours_ago(1),
                    occurred_at_precision=TimePrecision.MINUTE,
                    municipality_code="21001",
                    timeout=0.3,
                )
            proxy.fail("GetHead", *[UNAVAILABLE] * FAST_RETRY.max_attempts)
            with pytest.raises(UnavailableError):
                await registry.get_head()
            return written, head

    written, head = asyncio.run(scenario())
    assert written.replayed
    assert head.position == written.position
    ids = request_ids(proxy)
    assert len(ids) == 4
    assert len(set(ids[:3])) == 1
    assert len(proxy.calls_of("GetHead")) == 2 + FAST_RETRY.max_attempts


def test_backoff_is_jittered_exponential_and_bounded():
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2, rng=random.Random(1))
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.backoff(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
        assert len(set(delays)) > 100


def test_backoff_waits_at_least_what_the_server_asked_within_the_bound():
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=2.0, rng=random.Random(1))
    assert policy.backoff(1, server_delay=1.0) >= 1.0
    assert policy.backoff(1, server_delay=30.0) == 2.0


def test_only_unavailable_and_read_deadlines_are_retryable():
    policy = RetryPolicy(max_attempts=3)
    unavailable = UnavailableError("down", StatusDetails())
    deadline = DeadlineExceededError("slow", StatusDetails())
    assert policy.delay(unavailable, 1, read=False) is not None
    assert policy.delay(unavailable, 3, read=False) is None  # attempts used up
    assert policy.delay(deadline, 1, read=True) is not None
    assert policy.delay(deadline, 1, read=False) is None
    assert policy.delay(InvalidArgumentError("bad"), 1, read=True) is None


def test_a_policy_needs_at_least_one_attempt():
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
