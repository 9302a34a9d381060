"""The streams: churners that open and cancel streams, and streams read for the whole run.

- **stream churners** open `Subscribe` and `WatchStatistics` streams, read them for a random
  0.3-2 s (or 200 messages) and cancel them, over and over;
- **long-lived streams**: subscriptions from the start of the log and a `WatchStatistics`
  stream, read until the end-of-run checks are done; each records the highest position it
  reached, so that the checks can tell whether the subscribers caught up with the head.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    statistics_service_pb2,
    statistics_service_pb2_grpc,
)

from tests.support.soak.calls import Client, Shared
from tests.support.soak.settings import ACTOR

HOLD_SECONDS = (0.3, 2.0)
HOLD_MESSAGES = 200


class Churner(Client):
    """Opens Subscribe and WatchStatistics streams, reads them briefly, cancels them."""

    def run(self) -> None:
        """Churn until the run is over."""
        with grpc.insecure_channel(self.target) as channel:
            log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
            stats = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
            for turn in itertools.count():
                if not self.shared.pause():
                    return
                if turn % 2 == 0:
                    after = max(0, self.shared.tally.settled_position() - self.rng.randrange(200))
                    request: Any = event_log_service_pb2.SubscribeRequest(
                        after_position=after, max_batch_size=50
                    )
                    self.hold("Subscribe", log.Subscribe, request)
                else:
                    request = statistics_service_pb2.WatchStatisticsRequest(
                        area_kind=statistics_service_pb2.AREA_KIND_POLICE_ZONE,
                        period_kind=statistics_service_pb2.PERIOD_KIND_MONTH,
                    )
                    self.hold("WatchStatistics", stats.WatchStatistics, request)

    def hold(self, method: str, invoke: Callable[..., Any], request: Any) -> None:
        """Read a stream for 0.3-2 s or 200 messages, then cancel it."""
        seconds = self.rng.uniform(*HOLD_SECONDS)
        stream = invoke(request, metadata=ACTOR)
        timer = threading.Timer(seconds, stream.cancel)
        timer.start()
        messages = 0
        try:
            for _ in stream:
                messages += 1
                if messages >= HOLD_MESSAGES:
                    stream.cancel()
                    break
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.shared.tally.failed(method, err)
                return
        finally:
            timer.cancel()
        if messages == 0:
            # Under load a catch-up can take longer than a short hold: not an error.
            self.shared.tally.count(method, "CANCELLED before a message")
            return
        self.shared.tally.count(method, "CANCELLED by the client")


class LongStream:
    """A stream read for the whole run: a subscription from the start, or a statistics watch."""

    def __init__(self, name: str, target: str, shared: Shared, subscribe: bool) -> None:
        self.name = name
        self.target = target
        self.shared = shared
        self.subscribe = subscribe
        self.stream: Any = None
        self.ended = threading.Event()

    def run(self) -> None:
        """Read until cancelled by `close`."""
        with grpc.insecure_channel(self.target) as channel:
            if self.subscribe:
                log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
                self.stream = log.Subscribe(
                    event_log_service_pb2.SubscribeRequest(from_start=True, max_batch_size=100),
                    metadata=ACTOR,
                )
            else:
                stats = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
                self.stream = stats.WatchStatistics(
                    statistics_service_pb2.WatchStatisticsRequest(
                        area_kind=statistics_service_pb2.AREA_KIND_MUNICIPALITY,
                        period_kind=statistics_service_pb2.PERIOD_KIND_DAY,
                    ),
                    metadata=ACTOR,
                )
            self.read()

    def read(self) -> None:
        """Consume the stream, recording the highest position it reached."""
        method = "Subscribe(long)" if self.subscribe else "WatchStatistics(long)"
        try:
            for message in self.stream:
                self.note(message)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED or not self.shared.stop.is_set():
                self.shared.tally.failed(method, err, self.name)
                return
        else:
            self.shared.tally.problem(f"{self.name}: the server ended the stream")
            return
        finally:
            self.ended.set()
        self.shared.tally.count(method, "CANCELLED by the client")

    def note(self, message: Any) -> None:
        """Record how far the stream got."""
        if self.subscribe:
            kind = message.WhichOneof("message")
            if kind == "events" and message.events.events:
                position = message.events.events[-1].position
            elif kind in ("caught_up", "checkpoint"):
                position = getattr(message, kind).position
            else:
                return
        else:
            position = message.position
        with self.shared.tally.lock:
            self.shared.tally.subscribed_positions[self.name] = position

    def close(self) -> None:
        """Cancel the stream."""
        if self.stream is not None:
            self.stream.cancel()
