"""Limits that keep one caller from exhausting the registry (INCIDENTS_LIMIT_*, INCIDENTS_MAX_*).

- INCIDENTS_MAX_MESSAGE_BYTES bounds the size of a request; grpc refuses larger ones with
  RESOURCE_EXHAUSTED before the registry sees them (`service.api.server`).
- INCIDENTS_MAX_CALL_SECONDS bounds how long a unary call may run, whatever deadline its
  client set, or without one (`service.api.handlers`). Server streams are exempt.
- `CallLimiter` applies the per-caller limits: calls in flight, streams open, and a token
  bucket of calls per second. The registration-time wrapper of every registry RPC
  (`service.api.handlers`) asks it before parsing the request, keyed by the authenticated
  identity's name, or by the client's host when authentication is off. A refusal is a
  `LimitExceededError`: RESOURCE_EXHAUSTED with a RetryInfo detail (`service.api.errors`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from service.domain.errors import RegistryError

MIB = 1024 * 1024

DEFAULT_MAX_MESSAGE_BYTES = 4 * MIB
"""The default largest request, in bytes."""
MIN_MAX_MESSAGE_BYTES = 64 * 1024
"""The smallest value INCIDENTS_MAX_MESSAGE_BYTES may take (health and small calls must fit)."""
MAX_MAX_MESSAGE_BYTES = 256 * MIB
"""The largest value INCIDENTS_MAX_MESSAGE_BYTES may take."""

CALLS_RETRY_SECONDS = 0.1
"""The retry delay sent when a caller has too many calls in flight (unary calls are short)."""
STREAMS_RETRY_SECONDS = 1.0
"""The retry delay sent when a caller has too many streams open."""
SWEEP_SECONDS = 10.0
"""How often, at most, idle callers are forgotten (unless their number doubled meanwhile)."""

CONCURRENT_CALLS = "INCIDENTS_LIMIT_CONCURRENT_CALLS"
CONCURRENT_STREAMS = "INCIDENTS_LIMIT_CONCURRENT_STREAMS"
CALLS_PER_SECOND = "INCIDENTS_LIMIT_CALLS_PER_SECOND"
BURST = "INCIDENTS_LIMIT_BURST"
MAX_CALL_SECONDS = "INCIDENTS_MAX_CALL_SECONDS"
MAX_MESSAGE_BYTES = "INCIDENTS_MAX_MESSAGE_BYTES"


class LimitConfigError(ValueError):
    """Raised when a limit setting has an invalid value."""


@dataclass(frozen=True)
class LimitSettings:
    """The limits of a server; see the README's Limits section. 0 turns a limit off."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """INCIDENTS_MAX_MESSAGE_BYTES: the largest request grpc accepts."""
    max_call_seconds: float = 30.0
    """INCIDENTS_MAX_CALL_SECONDS: the longest a unary call runs (0: only its deadline)."""
    concurrent_calls: int = 64
    """INCIDENTS_LIMIT_CONCURRENT_CALLS: unary calls in flight per caller."""
    concurrent_streams: int = 16
    """INCIDENTS_LIMIT_CONCURRENT_STREAMS: server streams open per caller."""
    calls_per_second: float = 0.0
    """INCIDENTS_LIMIT_CALLS_PER_SECOND: the rate a caller's token bucket refills at."""
    burst: int = 0
    """INCIDENTS_LIMIT_BURST: the bucket's size (0: the rate rounded up); needs a rate."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not MIN_MAX_MESSAGE_BYTES <= self.max_message_bytes <= MAX_MAX_MESSAGE_BYTES:
            problems.append(
                f"{MAX_MESSAGE_BYTES} must be from {MIN_MAX_MESSAGE_BYTES} to "
                f"{MAX_MAX_MESSAGE_BYTES}, not {self.max_message_bytes}"
            )
        for name, value in (
            (MAX_CALL_SECONDS, self.max_call_seconds),
            (CONCURRENT_CALLS, self.concurrent_calls),
            (CONCURRENT_STREAMS, self.concurrent_streams),
            (CALLS_PER_SECOND, self.calls_per_second),
            (BURST, self.burst),
        ):
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be 0 (off) or more, not {value}")
        if self.burst and not self.calls_per_second:
            problems.append(f"{BURST} needs {CALLS_PER_SECOND}")
        if problems:
            raise LimitConfigError("; ".join(problems))

    @property
    def bucket_size(self) -> int:
        """The calls a caller may make at once before the rate applies (0: no rate limit)."""
        if not self.calls_per_second:
            return 0
        return self.burst or max(1, math.ceil(self.calls_per_second))

    @property
    def call_bound(self) -> float | None:
        """The longest a unary call runs, None when only its client's deadline bounds it."""
        return self.max_call_seconds or None

    def describe(self) -> dict[str, float]:
        """The limits in force, for the start-up log line (0: off)."""
        return {
            "max_message_bytes": self.max_message_bytes,
            "max_call_seconds": self.max_call_seconds,
            "limit_concurrent_calls": self.concurrent_calls,
            "limit_concurrent_streams": self.concurrent_streams,
            "limit_calls_per_second": self.calls_per_second,
            "limit_burst": self.bucket_size,
        }


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        msg = f"{name} must be a number, not {raw!r}"
        raise LimitConfigError(msg) from None


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        msg = f"{name} must be a whole number, not {raw!r}"
        raise LimitConfigError(msg) from None


def limits_from_env(env: Mapping[str, str]) -> LimitSettings:
    """Read the limit settings from `env`; LimitConfigError when one is invalid."""
    defaults = LimitSettings()
    return LimitSettings(
        max_message_bytes=_whole(env, MAX_MESSAGE_BYTES, defaults.max_message_bytes),
        max_call_seconds=_number(env, MAX_CALL_SECONDS, defaults.max_call_seconds),
        concurrent_calls=_whole(env, CONCURRENT_CALLS, defaults.concurrent_calls),
        concurrent_streams=_whole(env, CONCURRENT_STREAMS, defaults.concurrent_streams),
        calls_per_second=_number(env, CALLS_PER_SECOND, defaults.calls_per_second),
        burst=_whole(env, BURST, defaults.burst),
    )


class LimitExceededError(RegistryError):
    """A call refused by a per-caller limit: RESOURCE_EXHAUSTED, retry after `retry_after`."""

    def __init__(self, limit: str, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.limit = limit
        """The limit reached: `concurrent_calls`, `concurrent_streams` or `calls_per_second`
        (its setting is INCIDENTS_LIMIT_ and the name in capitals)."""
        self.retry_after = retry_after
        """Seconds after which a retry may be admitted."""


class CallTimedOutError(RegistryError):
    """A unary call that ran longer than INCIDENTS_MAX_CALL_SECONDS: DEADLINE_EXCEEDED."""

    def __init__(self, method: str, seconds: float) -> None:
        super().__init__(
            f"{method} did not finish within the server's limit of {seconds:g} s per call "
            f"({MAX_CALL_SECONDS}); a write may still have been recorded: retry it with the "
            "same request_id"
        )
        self.seconds = seconds


def peer_host(peer: str) -> str:
    """The host of a grpc peer ("ipv4:10.0.0.7:51234" → "10.0.0.7", "ipv6:[::1]:5" → "::1").

    Other peers (unix sockets) are returned whole.
    """
    scheme, separator, rest = peer.partition(":")
    if not separator or scheme not in {"ipv4", "ipv6"}:
        return peer
    host, _, _port = unquote(rest).rpartition(":")
    return host.strip("[]") or peer


class _Caller:
    """What the limiter knows of one caller."""

    __slots__ = ("calls", "streams", "tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.calls = 0
        self.streams = 0
        self.tokens = tokens
        self.updated = now


class CallLimiter:
    """Per-caller limits: unary calls in flight, server streams open, calls per second.

    Each caller (an identity's name, or a client's host) has a token bucket of `burst`
    tokens refilled at `calls_per_second`: every call, stream or not, takes one token, and is
    refused when none is left. Unary calls count against `concurrent_calls` while they run,
    server streams against `concurrent_streams` while they are open (and not against
    `concurrent_calls`, so open subscriptions never block a caller's unary calls). A limit of
    0 is off.

    Memory stays bounded: a caller is forgotten as soon as nothing of it is in flight and its
    bucket is full again (a new entry would be the same), at the latest SWEEP_SECONDS later,
    or sooner when the number of callers doubled since the last sweep. The limiter is used
    from the server's event loop only: it takes no locks.
    """

    def __init__(
        self,
        *,
        concurrent_calls: int = 0,
        concurrent_streams: int = 0,
        calls_per_second: float = 0.0,
        burst: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if calls_per_second and burst < 1:
            msg = "a rate limit needs a burst of at least 1"
            raise ValueError(msg)
        self._calls = concurrent_calls
        self._streams = concurrent_streams
        self._rate = calls_per_second
        self._burst = float(burst) if calls_per_second else 0.0
        self._clock = clock
        self._callers: dict[str, _Caller] = {}
        self._next_sweep = clock() + SWEEP_SECONDS
        self._sweep_size = 64

    @classmethod
    def from_settings(
        cls, settings: LimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> CallLimiter | None:
        """The limiter `settings` configure, None when every per-caller limit is off."""
        if not (settings.concurrent_calls or settings.concurrent_streams or settings.bucket_size):
            return None
        return cls(
            concurrent_calls=settings.concurrent_calls,
            concurrent_streams=settings.concurrent_streams,
            calls_per_second=settings.calls_per_second,
            burst=settings.bucket_size,
            clock=clock,
        )

    def __len__(self) -> int:
        """The number of callers remembered now."""
        return len(self._callers)

    def acquire(self, key: str, *, stream: bool) -> None:
        """Admit a call of `key` (a server stream when `stream`); LimitExceededError if not.

        An admitted call must be `release`d exactly once, when it ends.
        """
        now = self._clock()
        if now >= self._next_sweep or len(self._callers) > self._sweep_size:
            self.sweep()
        caller = self._callers.get(key)
        if caller is None:
            caller = self._callers[key] = _Caller(self._burst, now)
        if stream:
            if self._streams and caller.streams >= self._streams:
                msg = (
                    f"{key} has {caller.streams} streams open, the most allowed "
                    f"({CONCURRENT_STREAMS}={self._streams}); close one, then retry"
                )
                raise LimitExceededError("concurrent_streams", msg, STREAMS_RETRY_SECONDS)
        elif self._calls and caller.calls >= self._calls:
            msg = (
                f"{key} has {caller.calls} calls in flight, the most allowed "
                f"({CONCURRENT_CALLS}={self._calls}); retry when one has finished"
            )
            raise LimitExceededError("concurrent_calls", msg, CALLS_RETRY_SECONDS)
        if self._rate:
            tokens = min(self._burst, caller.tokens + (now - caller.updated) * self._rate)
            caller.updated = now
            if tokens < 1:
                caller.tokens = tokens
                wait = (1 - tokens) / self._rate
                msg = (
                    f"{key} made more than {self._rate:g} calls per second "
                    f"({CALLS_PER_SECOND}, burst {self._burst:g}); retry in {wait:.3g} s"
                )
                raise LimitExceededError("calls_per_second", msg, wait)
            caller.tokens = tokens - 1
        if stream:
            caller.streams += 1
        else:
            caller.calls += 1

    def release(self, key: str, *, stream: bool) -> None:
        """End a call that `acquire` admitted."""
        caller = self._callers[key]
        if stream:
            caller.streams -= 1
        else:
            caller.calls -= 1
        self._forget_if_idle(key, caller, self._clock())

    def sweep(self) -> None:
        """Forget every caller with nothing in flight and a full bucket."""
        now = self._clock()
        for key, caller in list(self._callers.items()):
            self._forget_if_idle(key, caller, now)
        self._next_sweep = now + SWEEP_SECONDS
        self._sweep_size = max(64, 2 * len(self._callers))

    def _forget_if_idle(self, key: str, caller: _Caller, now: float) -> None:
        if caller.calls or caller.streams:
            return
        if self._rate and caller.tokens + (now - caller.updated) * self._rate < self._burst:
            return
        del self._callers[key]
