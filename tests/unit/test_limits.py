"""The per-caller limiter (token buckets, calls in flight, streams open), on a manual clock,
and the limit settings."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from service.api.errors import DETAILS_KEY, status_for
from service.config import ConfigError, Settings
from service.security.limits import (
    CALLS_RETRY_SECONDS,
    DEFAULT_MAX_MESSAGE_BYTES,
    STREAMS_RETRY_SECONDS,
    SWEEP_SECONDS,
    CallLimiter,
    CallTimedOutError,
    LimitConfigError,
    LimitExceededError,
    LimitSettings,
    limits_from_env,
    peer_host,
)


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def refusal(limiter: CallLimiter, key: str, *, stream: bool = False) -> LimitExceededError:
    with pytest.raises(LimitExceededError) as raised:
        limiter.acquire(key, stream=stream)
    return raised.value


# --- token bucket ------------------------------------------------------------------------


def test_a_burst_is_admitted_then_the_rate_applies():
    clock = Clock()
    limiter = CallLimiter(calls_per_second=2, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("alice", stream=False)
        limiter.release("alice", stream=False)
    refused = refusal(limiter, "alice")
    assert refused.limit == "calls_per_second"
    assert refused.retry_after == pytest.approx(0.5)
    assert "alice" in str(refused)
    assert "INCIDENTS_LIMIT_CALLS_PER_SECOND" in str(refused)
    clock.advance(0.25)
    assert refusal(limiter, "alice").retry_after == pytest.approx(0.25)
    clock.advance(0.25)
    limiter.acquire("alice", stream=False)  # one token refilled
    assert refusal(limiter, "alice").retry_after == pytest.approx(0.5)


def test_the_bucket_refills_up_to_the_burst_only():
    clock = Clock()
    limiter = CallLimiter(calls_per_second=1, burst=2, clock=clock)
    limiter.acquire("alice", stream=False)
    clock.advance(3600)
    limiter.acquire("alice", stream=False)
    limiter.acquire("alice", stream=False)
    assert refusal(limiter, "alice").limit == "calls_per_second"


def test_streams_take_tokens_too():
    limiter = CallLimiter(calls_per_second=1, burst=1, clock=Clock())
    limiter.acquire("alice", stream=True)
    assert refusal(limiter, "alice").limit == "calls_per_second"


def test_each_caller_has_its_own_bucket():
    limiter = CallLimiter(calls_per_second=1, burst=1, clock=Clock())
    limiter.acquire("alice", stream=False)
    refusal(limiter, "alice")
    limiter.acquire("bob", stream=False)


# --- calls in flight and streams open ----------------------------------------------------


def test_calls_in_flight_are_limited_until_one_ends():
    limiter = CallLimiter(concurrent_calls=2, clock=Clock())
    limiter.acquire("alice", stream=False)
    limiter.acquire("alice", stream=False)
    refused = refusal(limiter, "alice")
    assert refused.limit == "concurrent_calls"
    assert refused.retry_after == CALLS_RETRY_SECONDS
    assert "INCIDENTS_LIMIT_CONCURRENT_CALLS=2" in str(refused)
    limiter.acquire("bob", stream=False)
    limiter.release("alice", stream=False)
    limiter.acquire("alice", stream=False)


def test_streams_count_apart_from_unary_calls():
    limiter = CallLimiter(concurrent_calls=1, concurrent_streams=1, clock=Clock())
    limiter.acquire("alice", stream=True)
    limiter.acquire("alice", stream=False)  # the open stream does not take a call's place
    refused = refusal(limiter, "alice", stream=True)
    assert refused.limit == "concurrent_streams"
    assert refused.retry_after == STREAMS_RETRY_SECONDS
    assert refusal(limiter, "alice").limit == "concurrent_calls"
    limiter.release("alice", stream=True)
    limiter.acquire("alice", stream=True)


def test_a_call_refused_for_concurrency_takes_no_token():
    limiter = CallLimiter(concurrent_calls=1, calls_per_second=1, burst=2, clock=Clock())
    limiter.acquire("alice", stream=False)
    for _ in range(5):
        assert refusal(limiter, "alice").limit == "concurrent_calls"
    limiter.release("alice", stream=False)
    limiter.acquire("alice", stream=False)  # the second token was still there


def test_zero_turns_a_limit_off():
    limiter = CallLimiter(concurrent_streams=1, clock=Clock())
    for _ in range(1000):
        limiter.acquire("alice", stream=False)
    limiter.acquire("alice", stream=True)
    assert refusal(limiter, "alice", stream=True).limit == "concurrent_streams"


# --- memory ------------------------------------------------------------------------------


def test_without_a_rate_a_caller_is_forgotten_when_its_last_call_ends():
    limiter = CallLimiter(concurrent_calls=4, concurrent_streams=4, clock=Clock())
    limiter.acquire("alice", stream=False)
    limiter.acquire("alice", stream=True)
    limiter.release("alice", stream=False)
    assert len(limiter) == 1
    limiter.release("alice", stream=True)
    assert len(limiter) == 0


def test_idle_callers_are_evicted_once_their_bucket_is_full_again():
    clock = Clock()
    limiter = CallLimiter(concurrent_calls=4, calls_per_second=10, burst=20, clock=clock)
    limiter.acquire("busy", stream=False)  # stays in flight throughout
    for index in range(50):
        limiter.acquire(f"10.0.0.{index}", stream=False)
        limiter.release(f"10.0.0.{index}", stream=False)
    assert len(limiter) == 51  # their buckets are not full yet: forgetting them would refill
    clock.advance(SWEEP_SECONDS)  # 100 tokens' worth: every bucket is full again
    limiter.acquire("newcomer", stream=False)  # the first call after the interval sweeps
    assert len(limiter) == 2  # busy (a call in flight) and newcomer
    limiter.release("busy", stream=False)
    limiter.release("newcomer", stream=False)
    clock.advance(SWEEP_SECONDS)
    limiter.sweep()
    assert len(limiter) == 0


def test_a_refused_caller_is_remembered_until_its_bucket_refills():
    clock = Clock()
    limiter = CallLimiter(calls_per_second=1, burst=1, clock=clock)
    limiter.acquire("alice", stream=False)
    limiter.release("alice", stream=False)
    refusal(limiter, "alice")
    clock.advance(0.5)
    limiter.sweep()
    assert len(limiter) == 1  # forgetting alice now would give her a fresh bucket
    refusal(limiter, "alice")
    clock.advance(1)
    limiter.sweep()
    assert len(limiter) == 0


def test_a_flood_of_callers_is_swept_before_the_interval_when_their_number_doubles():
    clock = Clock()
    limiter = CallLimiter(calls_per_second=1000, burst=1, clock=clock)
    peak = 0
    for index in range(10_000):
        clock.advance(0.001)  # each caller's bucket is full again one call later
        limiter.acquire(f"host-{index}", stream=False)
        limiter.release(f"host-{index}", stream=False)
        peak = max(peak, len(limiter))
    assert peak <= 2 * 64 + 1


# --- callers' keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:127.0.0.1:51234", "127.0.0.1"),
        ("ipv4:10.1.2.3:1", "10.1.2.3"),
        ("ipv6:[::1]:51234", "::1"),
        ("ipv6:%5B2001:db8::7%5D:443", "2001:db8::7"),
        ("unix:/run/registry.sock", "unix:/run/registry.sock"),
        ("", ""),
    ],
)
def test_a_peer_is_keyed_by_its_host(peer, host):
    assert peer_host(peer) == host


# --- statuses ----------------------------------------------------------------------------


def test_a_refusal_is_resource_exhausted_with_a_retry_delay_and_the_limit():
    err = LimitExceededError("calls_per_second", "alice made too many calls", 0.25)
    code, message, trailing = status_for(err)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert message == "alice made too many calls"
    [(key, raw)] = trailing
    assert key == DETAILS_KEY
    details = status_pb2.Status.FromString(raw).details
    retry, info = error_details_pb2.RetryInfo(), error_details_pb2.ErrorInfo()
    assert details[0].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() == 250_000_000
    assert details[1].Unpack(info)
    assert (info.reason, dict(info.metadata)) == ("LIMIT_EXCEEDED", {"limit": "calls_per_second"})


def test_a_call_over_the_bound_is_deadline_exceeded_naming_the_setting():
    code, message, _ = status_for(CallTimedOutError("/incidents.v1.X/Y", 30))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "/incidents.v1.X/Y" in message
    assert "30 s" in message
    assert "INCIDENTS_MAX_CALL_SECONDS" in message


# --- settings ----------------------------------------------------------------------------


def test_the_defaults():
    limits = Settings.from_env({}).limits
    assert limits == LimitSettings()
    assert limits.max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES == 4 * 1024 * 1024
    assert limits.call_bound == 30
    assert (limits.concurrent_calls, limits.concurrent_streams) == (64, 16)
    assert limits.bucket_size == 0  # no rate limit
    limiter = CallLimiter.from_settings(limits)
    assert limiter is not None


def test_the_settings_are_read_from_the_environment():
    limits = limits_from_env(
        {
            "INCIDENTS_MAX_MESSAGE_BYTES": "1048576",
            "INCIDENTS_MAX_CALL_SECONDS": "2.5",
            "INCIDENTS_LIMIT_CONCURRENT_CALLS": "8",
            "INCIDENTS_LIMIT_CONCURRENT_STREAMS": "0",
            "INCIDENTS_LIMIT_CALLS_PER_SECOND": "12.5",
        }
    )
    assert limits == LimitSettings(
        max_message_bytes=1048576,
        max_call_seconds=2.5,
        concurrent_calls=8,
        concurrent_streams=0,
        calls_per_second=12.5,
    )
    assert limits.bucket_size == 13  # the burst defaults to the rate, rounded up
    slow = {"INCIDENTS_LIMIT_CALLS_PER_SECOND": "0.1", "INCIDENTS_LIMIT_BURST": "50"}
    assert limits_from_env(slow).bucket_size == 50
    assert limits_from_env({"INCIDENTS_LIMIT_CALLS_PER_SECOND": "0.1"}).bucket_size == 1


def test_everything_off():
    limits = limits_from_env(
        {
            "INCIDENTS_MAX_CALL_SECONDS": "0",
            "INCIDENTS_LIMIT_CONCURRENT_CALLS": "0",
            "INCIDENTS_LIMIT_CONCURRENT_STREAMS": "0",
        }
    )
    assert limits.call_bound is None
    assert CallLimiter.from_settings(limits) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INCIDENTS_MAX_MESSAGE_BYTES": "1000"}, "INCIDENTS_MAX_MESSAGE_BYTES must be from"),
        ({"INCIDENTS_MAX_MESSAGE_BYTES": "4MiB"}, "must be a whole number"),
        ({"INCIDENTS_MAX_CALL_SECONDS": "-1"}, "INCIDENTS_MAX_CALL_SECONDS must be 0"),
        ({"INCIDENTS_MAX_CALL_SECONDS": "nan"}, "INCIDENTS_MAX_CALL_SECONDS must be 0"),
        ({"INCIDENTS_LIMIT_CONCURRENT_CALLS": "-3"}, "INCIDENTS_LIMIT_CONCURRENT_CALLS must"),
        ({"INCIDENTS_LIMIT_CONCURRENT_STREAMS": "1.5"}, "must be a whole number"),
        ({"INCIDENTS_LIMIT_CALLS_PER_SECOND": "fast"}, "must be a number"),
        ({"INCIDENTS_LIMIT_CALLS_PER_SECOND": "inf"}, "INCIDENTS_LIMIT_CALLS_PER_SECOND must"),
        ({"INCIDENTS_LIMIT_BURST": "10"}, "INCIDENTS_LIMIT_BURST needs"),
    ],
)
def test_invalid_settings_are_refused_by_name(env, message):
    with pytest.raises(LimitConfigError, match=message):
        limits_from_env(env)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
