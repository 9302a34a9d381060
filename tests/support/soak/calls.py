"""What the clients share and saw: the tally of calls and acknowledged writes, and a caller.

Every client makes its calls through a `Caller`, which counts each answer by method and
status code in the run's `Tally` (a code the request did not expect is counted as
"unexpected <CODE>" and recorded as a problem) and which acknowledged writes the end-of-run
checks look for in the log.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from tests.support.soak.settings import ACTOR, READ_YOUR_WRITES_AGE

T = TypeVar("T")
OK = "OK"


@dataclass(frozen=True)
class Ack:
    """An acknowledged write: which RPC, and where the server said it wrote."""

    method: str
    aggregate_id: str
    version: int
    position: int


@dataclass
class Tally:
    """Calls by method and status code, acknowledged writes and problems, for all clients."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    acks: list[Ack] = field(default_factory=list)
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=512))
    problems: list[str] = field(default_factory=list)
    subscribed_positions: dict[str, int] = field(default_factory=dict)

    def count(self, method: str, code: str) -> None:
        """Record one answered call."""
        with self.lock:
            self.calls[(method, code)] += 1

    def problem(self, text: str) -> None:
        """Record something that must not happen (the first 50 are kept)."""
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)

    def acknowledge(self, method: str, result: Any) -> None:
        """Record a first (not replayed) acknowledgement of a write."""
        ack = Ack(method, result.aggregate_id, result.version, result.position)
        with self.lock:
            self.acks.append(ack)
            self.recent.append((time.monotonic(), ack.position))

    def settled_position(self) -> int:
        """A position acknowledged at least READ_YOUR_WRITES_AGE ago (0 if none)."""
        horizon = time.monotonic() - READ_YOUR_WRITES_AGE
        with self.lock:
            settled = [position for moment, position in self.recent if moment <= horizon]
        return max(settled, default=0)

    def unexpected(self) -> dict[tuple[str, str], int]:
        """Calls answered with a code their request did not expect."""
        with self.lock:
            return {key: n for key, n in self.calls.items() if key[1].startswith("unexpected ")}

    def failed(self, method: str, err: grpc.RpcError, name: str | None = None) -> None:
        """Record a call or stream that failed unexpectedly (a problem of `name`, or `method`)."""
        code = code_name(err.code())
        self.count(method, f"unexpected {code}")
        self.problem(f"{name or method}: {code} {err.details()}")


def code_name(code: grpc.StatusCode | None) -> str:
    """The name of a status code (UNKNOWN when the call gave none)."""
    return code.name if code is not None else "UNKNOWN"


@dataclass
class Shared:
    """What clients share: the stop signal, the tally and ids others can read."""

    stop: threading.Event
    tally: Tally
    timeout: float
    pace: float
    incidents: deque[str] = field(default_factory=lambda: deque(maxlen=256))
    gangs: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    cases: deque[str] = field(default_factory=lambda: deque(maxlen=64))

    def pause(self) -> bool:
        """Wait `pace` seconds; False once the run is over."""
        return not self.stop.wait(self.pace)


class Client:
    """A load client: the server's address, what the clients share and its own randomness."""

    def __init__(self, target: str, shared: Shared, rng: random.Random) -> None:
        self.target = target
        self.shared = shared
        self.rng = rng

    def pick(self, choices: Any) -> Any:
        """One of `choices` at random."""
        return self.rng.choice(list(choices))


class Caller:
    """Makes calls on one channel and tallies their outcomes."""

    def __init__(self, channel: grpc.Channel, tally: Tally, timeout: float) -> None:
        self.channel = channel
        self.tally = tally
        self.timeout = timeout

    def call(
        self,
        method: str,
        invoke: Callable[..., T],
        request: Any,
        expected: grpc.StatusCode | None = None,
    ) -> T | None:
        """Call `invoke(request)`; None when it failed (tallied, a problem unless expected)."""
        try:
            reply = invoke(request, timeout=self.timeout, metadata=ACTOR)
        except grpc.RpcError as err:
            if err.code() == expected:
                self.tally.count(method, code_name(err.code()))
            else:
                self.tally.failed(method, err)
            return None
        if expected is not None:
            self.tally.count(method, f"unexpected {OK}")
            self.tally.problem(f"{method}: answered OK, expected {code_name(expected)}")
            return None
        self.tally.count(method, OK)
        return reply
