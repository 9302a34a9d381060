"""Helpers for the EventLogService tests: a tunable server harness, paged reads, subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    events_pb2,
    incident_service_pb2_grpc,
)

from service.api.server import start_server
from service.app.event_log import FollowSettings
from service.app.registry import Registry
from service.areas import load_catalog
from service.store.base import LogPage
from service.store.sqlite import SQLiteEventStore
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.harness import ServerHarness

pb = event_log_service_pb2
Envelope = events_pb2.EventEnvelope


class GatedSQLiteEventStore(SQLiteEventStore):
    """The SQLite store whose log page reads (ReadAll, subscriptions) wait while a gate is shut.

    Writes are not gated: a test can hold every follower still while the log grows.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """How many page reads are waiting at the gate."""
        with self._lock:
            return self._held

    def read_page(self, **kwargs: Any) -> LogPage:
        """Wait for the gate (10 s at most), then read."""
        with self._lock:
            self._held += 1
        try:
            self.gate.wait(timeout=10)
        finally:
            with self._lock:
                self._held -= 1
        return super().read_page(**kwargs)


class LogHarness(ServerHarness):
    """ServerHarness with custom FollowSettings, stall_seconds, poll interval and options.

    Its store is a GatedSQLiteEventStore (gate open unless a test shuts it).
    """

    def __init__(
        self,
        db_path: Path,
        *,
        follow: FollowSettings | None = None,
        stall_seconds: float = 30.0,
        poll_interval: float = 0.1,
        options: tuple[tuple[str, int], ...] = (),
    ) -> None:
        super().__init__(db_path)
        self.follow = follow
        self.stall_seconds = stall_seconds
        self.poll_interval = poll_interval
        self.options = options
        self.store: GatedSQLiteEventStore | None = None

    def start(self) -> LogHarness:
        """Open the store and start serving with this harness's settings."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        backend = GatedSQLiteEventStore(self.db_path)
        self.store = backend
        self.registry = Registry(
            backend,
            load_catalog(self.catalog),
            clock=self.clock,
            poll_interval=self.poll_interval,
            follow=self.follow,
        )
        self._running = self._call(
            start_server(
                self.registry,
                "127.0.0.1:0",
                stall_seconds=self.stall_seconds,
                options=self.options,
            )
        )
        return self

    def block_loop(self, seconds: float) -> None:
        """Keep the server's event loop busy for `seconds`; return once the block has begun.

        gRPC core keeps sending and receiving meanwhile; the completions it reports are
        handled together when the loop is free again.
        """
        assert self._loop is not None, "server not started"
        started = threading.Event()

        def block() -> None:
            started.set()
            time.sleep(seconds)

        self._loop.call_soon_threadsafe(block)
        assert started.wait(timeout=5), "the server's event loop did not run the block"


# --- reading -------------------------------------------------------------------------------


def read_all_pages(
    log: event_log_service_pb2_grpc.EventLogServiceStub,
    *,
    backwards: bool = False,
    limit: int = 100,
    log_filter: pb.EventFilter | None = None,
    payload_format: pb.PayloadFormat.ValueType = pb.PAYLOAD_FORMAT_UNSPECIFIED,
) -> tuple[list[Envelope], list[pb.ReadAllResponse]]:
    """Read the whole log page by page, following next_position until it is 0."""
    events: list[Envelope] = []
    pages: list[pb.ReadAllResponse] = []
    position = 0
    while True:
        page = log.ReadAll(
            pb.ReadAllRequest(
                from_position=position,
                direction=pb.READ_DIRECTION_BACKWARDS if backwards else pb.READ_DIRECTION_FORWARDS,
                limit=limit,
                filter=log_filter,
                payload_format=payload_format,
            )
        )
        pages.append(page)
        events.extend(page.events)
        if page.next_position == 0:
            return events, pages
        position = page.next_position
        assert len(pages) < 10_000, "ReadAll paging does not end"


def positions(events: list[Envelope]) -> list[int]:
    """The positions of envelopes."""
    return [e.position for e in events]


# --- writing -------------------------------------------------------------------------------


def report_many(
    channel: grpc.Channel, count: int, *, threads: int = 8, **overrides: Any
) -> list[int]:
    """Report `count` shootings from `threads` threads; return the write positions."""
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)

    def one(_: int) -> int:
        reply = stub.ReportShooting(b.shooting(**overrides), metadata=ACTOR_METADATA)
        return int(reply.result.position)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(count)))


def report_many_async(channel: grpc.Channel, count: int, **overrides: Any) -> list[int]:
    """Report `count` shootings with every call in flight at once (fast bulk load)."""
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    futures = [
        stub.ReportShooting.future(b.shooting(**overrides), metadata=ACTOR_METADATA)
        for _ in range(count)
    ]
    return [int(f.result(timeout=60).result.position) for f in futures]


# --- subscribing ---------------------------------------------------------------------------


_END = object()


class Subscriber:
    """A Subscribe call read on a background thread into a queue, with timestamps."""

    def __init__(
        self,
        channel: grpc.Channel,
        request: pb.SubscribeRequest,
        *,
        timeout: float | None = None,
    ) -> None:
        stub = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        self.call: Any = stub.Subscribe(request, timeout=timeout)
        self.messages: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for message in self.call:
                self.messages.put((time.monotonic(), message))
        except grpc.RpcError as err:
            self.error = err
        finally:
            self.messages.put((time.monotonic(), _END))

    def next(self, timeout: float = 5.0) -> pb.SubscribeResponse:
        """The next message; fails if none arrives in time or the stream ended."""
        return self.next_timed(timeout)[1]

    def next_timed(self, timeout: float = 5.0) -> tuple[float, pb.SubscribeResponse]:
        """The next message with its arrival time (time.monotonic())."""
        try:
            arrived, message = self.messages.get(timeout=timeout)
        except queue.Empty:
            msg = f"no subscription message within {timeout} s"
            raise AssertionError(msg) from None
        if message is _END:
            self.messages.put((arrived, _END))
            msg = f"the subscription ended: {self.error!r}"
            raise AssertionError(msg)
        return arrived, message

    def until(
        self, done: Callable[[list[pb.SubscribeResponse]], bool], timeout: float = 10.0
    ) -> list[pb.SubscribeResponse]:
        """Collect messages until `done(collected)` holds."""
        deadline = time.monotonic() + timeout
        collected: list[pb.SubscribeResponse] = []
        while not done(collected):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [m.WhichOneof("message") for m in collected]
                msg = f"condition not met within {timeout} s; got {kinds[-20:]}"
                raise AssertionError(msg)
            collected.append(self.next(remaining))
        return collected

    def until_caught_up(self, timeout: float = 10.0) -> list[pb.SubscribeResponse]:
        """Collect messages up to and including the next caught_up."""
        return self.until(
            lambda got: bool(got) and got[-1].WhichOneof("message") == "caught_up", timeout
        )

    def quiet(self, seconds: float) -> list[pb.SubscribeResponse]:
        """Whatever arrives within `seconds` (the stream must not end)."""
        deadline = time.monotonic() + seconds
        collected: list[pb.SubscribeResponse] = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                arrived, message = self.messages.get(timeout=remaining)
            except queue.Empty:
                break
            if message is _END:
                self.messages.put((arrived, _END))
                msg = f"the subscription ended: {self.error!r}"
                raise AssertionError(msg)
            collected.append(message)
        return collected

    def cancel(self) -> None:
        """Cancel the call and wait for the reader thread."""
        self.call.cancel()
        self._thread.join(timeout=5)


def events_of(messages: list[pb.SubscribeResponse]) -> list[Envelope]:
    """The envelopes of the event batches among `messages`."""
    return [e for m in messages if m.WhichOneof("message") == "events" for e in m.events.events]


def kinds(messages: list[pb.SubscribeResponse]) -> list[str]:
    """The kind of each message, with consecutive event batches collapsed to one 'events'."""
    found: list[str] = []
    for m in messages:
        kind = m.WhichOneof("message") or ""
        if not (kind == "events" and found and found[-1] == "events"):
            found.append(kind)
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `condition` until it holds or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)


def all_batches(messages: list[pb.SubscribeResponse]) -> Iterator[pb.EventBatch]:
    """The event batches among `messages`."""
    for m in messages:
        if m.WhichOneof("message") == "events":
            yield m.events


@contextlib.contextmanager
def log_server(db_path: Path, *, grace: float = 1.0, **settings: Any) -> Iterator[LogHarness]:
    """A LogHarness started with `settings`, stopped on exit (in-flight calls get `grace` s)."""
    harness = LogHarness(db_path, **settings).start()
    try:
        yield harness
    finally:
        harness.stop(grace)


@contextlib.contextmanager
def reads_held(harness: LogHarness) -> Iterator[GatedSQLiteEventStore]:
    """Shut the harness's read gate for the block (log page reads wait), then open it."""
    assert harness.store is not None
    harness.store.gate.clear()
    try:
        yield harness.store
    finally:
        harness.store.gate.set()
