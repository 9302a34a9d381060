"""Limits over real channels: request size, page and batch sizes, per-caller limits, call bound.

Each refusal must be a clear status (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, DEADLINE_EXCEEDED
with a message naming the limit), never INTERNAL, and the server must keep serving.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import (
    audit_service_pb2,
    command_query_service_pb2,
    event_log_service_pb2,
    incident_pb2,
    incident_query_service_pb2,
    incident_service_pb2,
    statistics_service_pb2,
    wave_service_pb2,
)

from service.security.auth import ServerSecurity, build_guard
from service.security.limits import LimitSettings
from service.security.settings import SecuritySettings
from tests.security.conftest import ALICE_TOKEN, role_token, write_tokens_file
from tests.support import builders as b
from tests.support.harness import ServerHarness

OPERATOR = role_token("operator")
ADMIN = role_token("admin")
HEAD = "/incidents.v1.EventLogService/GetHead"
SUBSCRIBE = "/incidents.v1.EventLogService/Subscribe"
REPORT = "/incidents.v1.IncidentService/ReportShooting"

StartServer = Callable[..., ServerHarness]


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers with the given limits (authenticating with the test tokens when
    `tokens`); all stopped at the end."""
    started: list[ServerHarness] = []

    def start(
        limits: LimitSettings, *, tokens: bool = True, metrics: bool = False
    ) -> ServerHarness:
        security = None
        if tokens:
            settings = SecuritySettings(
                auth="tokens", auth_tokens_file=write_tokens_file(tmp_path / "tokens.json")
            )
            security = ServerSecurity(guard=build_guard(settings))
        harness = ServerHarness(
            tmp_path / f"registry-{len(started)}.sqlite",
            security=security,
            limits=limits,
            metrics=metrics,
        ).start()
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.stop()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def get_head(channel: grpc.Channel, token: str | None = None, **options: Any) -> int:
    call = channel.unary_unary(
        HEAD,
        request_serializer=event_log_service_pb2.GetHeadRequest.SerializeToString,
        response_deserializer=event_log_service_pb2.GetHeadResponse.FromString,
    )
    options.setdefault("timeout", 10)
    metadata = (*options.pop("metadata", ()), *(bearer(token) if token else ()))
    reply = call(event_log_service_pb2.GetHeadRequest(), metadata=metadata, **options)
    return int(reply.position)


def subscribe(channel: grpc.Channel, token: str) -> Any:
    """An open subscription from the end of the log (a grpc stream call)."""
    call = channel.unary_stream(
        SUBSCRIBE,
        request_serializer=event_log_service_pb2.SubscribeRequest.SerializeToString,
        response_deserializer=event_log_service_pb2.SubscribeResponse.FromString,
    )
    return call(event_log_service_pb2.SubscribeRequest(from_end=True), metadata=bearer(token))


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def retry_delay(err: grpc.RpcError) -> float:
    """The RetryInfo delay of a refusal, in seconds."""
    retry_info = b.detail(err, error_details_pb2.RetryInfo)
    return float(retry_info.retry_delay.ToNanoseconds()) / 1e9


def limit_of(err: grpc.RpcError) -> str:
    """The limit an ErrorInfo LIMIT_EXCEEDED detail names."""
    info = b.detail(err, error_details_pb2.ErrorInfo)
    assert info.reason == "LIMIT_EXCEEDED"
    return str(info.metadata["limit"])


class Gate:
    """Holds the first `held` calls of a patched coroutine function until opened."""

    def __init__(self, original: Callable[..., Any], held: int) -> None:
        self._original = original
        self._held = held
        self.entered = 0
        self.all_held = threading.Event()
        self.opened = threading.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered += 1
        if self.entered <= self._held:
            if self.entered == self._held:
                self.all_held.set()
            while not self.opened.is_set():
                await asyncio.sleep(0.01)
        return await self._original(*args, **kwargs)


# --- message size ------------------------------------------------------------------------


def test_an_oversize_request_is_refused_by_grpc_and_the_server_keeps_serving(limited_server):
    server = limited_server(LimitSettings(max_message_bytes=64 * 1024), tokens=False)
    report = incident_service_pb2.ReportShootingRequest
    with server.channel() as channel:
        stub = channel.unary_unary(REPORT, request_serializer=report.SerializeToString)
        too_large = b.shooting(description="x" * 70_000)
        assert too_large.ByteSize() > 64 * 1024
        err = rpc_error(lambda: stub(too_large, timeout=10))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (err.details() or "")
        # Just under the limit, the request reaches the registry, which judges its fields.
        fits = b.shooting(description="x" * 60_000)
        assert fits.ByteSize() < 64 * 1024
        err = rpc_error(lambda: stub(fits, timeout=10))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "description" in b.field_violations(err)
        assert get_head(channel) == 0
        stub(b.shooting(), timeout=10)
        assert get_head(channel) == 1


def test_the_default_message_limit_is_four_mebibytes(limited_server):
    server = limited_server(LimitSettings(), tokens=False)
    with server.channel() as channel:
        stub = channel.unary_unary(
            REPORT, request_serializer=incident_service_pb2.ReportShootingRequest.SerializeToString
        )
        too_large = b.shooting(description="x" * (4 * 1024 * 1024))
        err = rpc_error(lambda: stub(too_large, timeout=10))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert get_head(channel) == 0


# --- page and batch sizes ----------------------------------------------------------------

EVENT_LOG = "/incidents.v1.EventLogService/"
BATCH_CASES: list[tuple[str, Message, bool, str]] = [
    # (RPC, request, server streaming, the field refused)
    (
        EVENT_LOG + "ReadStream",
        event_log_service_pb2.ReadStreamRequest(stream_id=str(uuid4()), limit=1001),
        False,
        "limit",
    ),
    (
        EVENT_LOG + "ReadStream",
        event_log_service_pb2.ReadStreamRequest(stream_id=str(uuid4()), limit=-1),
        False,
        "limit",
    ),
    (EVENT_LOG + "ReadAll", event_log_service_pb2.ReadAllRequest(limit=1001), False, "limit"),
    (EVENT_LOG + "ReadAll", event_log_service_pb2.ReadAllRequest(limit=-5), False, "limit"),
    (
        EVENT_LOG + "Subscribe",
        event_log_service_pb2.SubscribeRequest(from_start=True, max_batch_size=1001),
        True,
        "max_batch_size",
    ),
    (
        EVENT_LOG + "Subscribe",
        event_log_service_pb2.SubscribeRequest(from_start=True, max_batch_size=-1),
        True,
        "max_batch_size",
    ),
    (
        EVENT_LOG + "ExportEvents",
        event_log_service_pb2.ExportEventsRequest(max_batch_size=2001),
        True,
        "max_batch_size",
    ),
    (
        EVENT_LOG + "ExportEvents",
        event_log_service_pb2.ExportEventsRequest(max_batch_size=-1),
        True,
        "max_batch_size",
    ),
    (
        EVENT_LOG + "ImportEvents",
        event_log_service_pb2.ImportEventsRequest(
            events=[event_log_service_pb2.ExportedEvent()] * 2001
        ),
        False,
        "events",
    ),
    (EVENT_LOG + "ImportEvents", event_log_service_pb2.ImportEventsRequest(), False, "events"),
    (
        "/incidents.v1.IncidentService/ReportShootings",
        incident_service_pb2.ReportShootingsRequest(
            requests=[incident_service_pb2.ReportShootingRequest()] * 1001
        ),
        False,
        "requests",
    ),
    (
        "/incidents.v1.IncidentService/ReportShootings",
        incident_service_pb2.ReportShootingsRequest(),
        False,
        "requests",
    ),
    (
        "/incidents.v1.IncidentQueryService/ListIncidents",
        incident_query_service_pb2.ListIncidentsRequest(page_size=501),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.IncidentQueryService/ListIncidents",
        incident_query_service_pb2.ListIncidentsRequest(page_size=-1),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.IncidentQueryService/ListIncidents",
        incident_query_service_pb2.ListIncidentsRequest(
            weapon_kinds=[incident_pb2.WEAPON_KIND_HANDGUN] * 101
        ),
        False,
        "weapon_kinds",
    ),
    (
        "/incidents.v1.WaveService/ListWaves",
        wave_service_pb2.ListWavesRequest(page_size=501),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.WaveService/ListWaves",
        wave_service_pb2.ListWavesRequest(page_size=-1),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.WaveService/ListWaves",
        wave_service_pb2.ListWavesRequest(
            area_kind=statistics_service_pb2.AREA_KIND_MUNICIPALITY, area_codes=["21001"] * 101
        ),
        False,
        "area_codes",
    ),
    (
        "/incidents.v1.CommandQueryService/ListUnifiedCommands",
        command_query_service_pb2.ListUnifiedCommandsRequest(page_size=-1),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.AuditService/ListAuditEntries",
        audit_service_pb2.ListAuditEntriesRequest(page_size=1001),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.AuditService/ListAuditEntries",
        audit_service_pb2.ListAuditEntriesRequest(page_size=-1),
        False,
        "page_size",
    ),
    (
        "/incidents.v1.StatisticsService/GetIncidentBreakdown",
        statistics_service_pb2.GetIncidentBreakdownRequest(
            area_kind=statistics_service_pb2.AREA_KIND_MUNICIPALITY, area_codes=["21001"] * 101
        ),
        False,
        "area_codes",
    ),
]


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHarness]:
    """One server without authentication or limits, for the page and batch sizes."""
    harness = ServerHarness(tmp_path_factory.mktemp("sizes") / "registry.sqlite").start()
    yield harness
    harness.stop()


@pytest.mark.parametrize(
    ("rpc", "request_message", "streaming", "field"),
    BATCH_CASES,
    ids=[
        f"{rpc.rsplit('/', 1)[1]}-{field}-{index}"
        for index, (rpc, _, _, field) in enumerate(BATCH_CASES)
    ],
)
def test_every_page_and_batch_size_is_bounded(open_server, rpc, request_message, streaming, field):
    with open_server.channel() as channel:
        if streaming:
            stream = channel.unary_stream(
                rpc, request_serializer=type(request_message).SerializeToString
            )
            err = rpc_error(lambda: next(iter(stream(request_message, timeout=10))))
        else:
            unary = channel.unary_unary(
                rpc, request_serializer=type(request_message).SerializeToString
            )
            err = rpc_error(lambda: unary(request_message, timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    violations = b.field_violations(err)
    assert field in violations, violations
    assert any(char.isdigit() for char in violations[field])  # it names the bound


def test_list_unified_commands_lowers_a_large_page_size_as_its_contract_says(open_server):
    rpc = "/incidents.v1.CommandQueryService/ListUnifiedCommands"
    request = command_query_service_pb2.ListUnifiedCommandsRequest(page_size=100_000)
    with open_server.channel() as channel:
        unary = channel.unary_unary(
            rpc,
            request_serializer=type(request).SerializeToString,
            response_deserializer=command_query_service_pb2.ListUnifiedCommandsResponse.FromString,
        )
        assert list(unary(request, timeout=10).commands) == []


# --- calls per second --------------------------------------------------------------------


def test_a_caller_over_its_rate_is_refused_and_another_is_not(limited_server):
    # One call per 100 s after a burst of 3: nothing refills while the test runs.
    server = limited_server(LimitSettings(calls_per_second=0.01, burst=3))
    with server.channel() as channel:
        for _ in range(3):
            get_head(channel, OPERATOR)
        err = rpc_error(lambda: get_head(channel, OPERATOR))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "operator-user" in (err.details() or "")
        assert "INCIDENTS_LIMIT_CALLS_PER_SECOND" in (err.details() or "")
        assert limit_of(err) == "calls_per_second"
        assert 90 < retry_delay(err) <= 100
        # Another identity has its own bucket.
        for _ in range(3):
            get_head(channel, ALICE_TOKEN)
        # Credentials are checked first: a stranger is not authenticated, not throttled.
        stranger = rpc_error(lambda: get_head(channel, "not-a-token-of-anyone"))
        assert stranger.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_throttled_call_is_refused_before_its_request_is_parsed(limited_server):
    server = limited_server(LimitSettings(calls_per_second=0.01, burst=1))
    with server.channel() as channel:
        raw = channel.unary_unary(HEAD)  # bytes in, bytes out
        not_protobuf = b"\xff\xff\xff"
        first = rpc_error(lambda: raw(not_protobuf, metadata=bearer(OPERATOR), timeout=10))
        assert first.code() == grpc.StatusCode.INVALID_ARGUMENT
        second = rpc_error(lambda: raw(not_protobuf, metadata=bearer(OPERATOR), timeout=10))
        assert second.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_without_authentication_callers_are_limited_by_host_and_refusals_counted(
    limited_server,
):
    server = limited_server(
        LimitSettings(calls_per_second=0.01, burst=2), tokens=False, metrics=True
    )
    with server.channel() as channel:
        get_head(channel, metadata=(("x-actor", "one"),))
        get_head(channel, metadata=(("x-actor", "two"),))
        # Another x-actor is the same client: its claim does not buy another bucket.
        err = rpc_error(lambda: get_head(channel, metadata=(("x-actor", "three"),)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (err.details() or "").startswith("127.0.0.1 ")
    assert limit_of(err) == "calls_per_second"
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        scraped = response.read().decode()
    assert 'incidents_limit_refusals_total{limit="calls_per_second"} 1.0' in scraped
    assert (
        'incidents_grpc_requests_total{code="RESOURCE_EXHAUSTED",'
        'method="/incidents.v1.EventLogService/GetHead"} 1.0'
    ) in scraped


# --- calls in flight ---------------------------------------------------------------------


def test_calls_in_flight_are_limited_per_caller(limited_server, monkeypatch):
    server = limited_server(LimitSettings(concurrent_calls=2))
    assert server.registry is not None
    gate = Gate(server.registry.event_log.head, held=2)
    monkeypatch.setattr(server.registry.event_log, "head", gate)
    with server.channel() as channel:
        stub = channel.unary_unary(
            HEAD,
            request_serializer=event_log_service_pb2.GetHeadRequest.SerializeToString,
            response_deserializer=event_log_service_pb2.GetHeadResponse.FromString,
        )
        slow = [
            stub.future(
                event_log_service_pb2.GetHeadRequest(), metadata=bearer(OPERATOR), timeout=30
            )
            for _ in range(2)
        ]
        try:
            assert gate.all_held.wait(10), "the slow calls never reached the registry"
            err = rpc_error(lambda: get_head(channel, OPERATOR))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "INCIDENTS_LIMIT_CONCURRENT_CALLS=2" in (err.details() or "")
            assert limit_of(err) == "concurrent_calls"
            assert 0 < retry_delay(err) <= 1
            assert get_head(channel, ALICE_TOKEN) == 0  # another caller is not affected
        finally:
            gate.opened.set()
        assert [future.result(timeout=10).position for future in slow] == [0, 0]
        assert get_head(channel, OPERATOR) == 0  # their places were given back


def test_open_streams_are_limited_apart_from_unary_calls(limited_server):
    server = limited_server(LimitSettings(concurrent_calls=1, concurrent_streams=1))
    with server.channel() as channel:
        first = subscribe(channel, OPERATOR)
        assert next(first).HasField("caught_up")
        err = rpc_error(lambda: next(subscribe(channel, OPERATOR)))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "INCIDENTS_LIMIT_CONCURRENT_STREAMS=1" in (err.details() or "")
        assert limit_of(err) == "concurrent_streams"
        # The open stream takes no unary call's place, nor another caller's stream.
        assert get_head(channel, OPERATOR) == 0
        other = subscribe(channel, ADMIN)
        assert next(other).HasField("caught_up")
        other.cancel()
        first.cancel()
        # The server releases the place once it sees the cancellation.
        assert subscribe_when_released(channel, OPERATOR).HasField("caught_up")


def subscribe_when_released(
    channel: grpc.Channel, token: str
) -> event_log_service_pb2.SubscribeResponse:
    """The first message of a subscription opened as soon as the server has released the
    caller's last one (it does once it sees the cancellation); the subscription is then
    cancelled."""
    deadline = time.monotonic() + 10
    while True:
        call = subscribe(channel, token)
        try:
            first: event_log_service_pb2.SubscribeResponse = next(call)
        except grpc.RpcError as err:
            refused = err
        else:
            call.cancel()
            return first
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused
        assert time.monotonic() < deadline, "the stream's place was never released"
        time.sleep(0.05)


# --- the call bound ----------------------------------------------------------------------


def test_a_unary_call_is_bounded_by_the_server_and_a_stream_is_not(limited_server, monkeypatch):
    server = limited_server(LimitSettings(max_call_seconds=0.3), tokens=False)
    assert server.registry is not None
    original = server.registry.event_log.head

    async def stuck() -> Any:
        await asyncio.sleep(60)
        return await original()

    monkeypatch.setattr(server.registry.event_log, "head", stuck)
    with server.channel() as channel:
        for options in ({"timeout": None}, {"timeout": 30}):
            started = time.monotonic()
            err = rpc_error(lambda options=options: get_head(channel, **options))
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "INCIDENTS_MAX_CALL_SECONDS" in (err.details() or "")
            assert "0.3 s" in (err.details() or "")
            assert time.monotonic() - started < 20
        monkeypatch.setattr(server.registry.event_log, "head", original)
        assert get_head(channel) == 0
        # A subscription outlives the bound: it ends only on a stall or its client's leave.
        stream = channel.unary_stream(
            SUBSCRIBE,
            request_serializer=event_log_service_pb2.SubscribeRequest.SerializeToString,
            response_deserializer=event_log_service_pb2.SubscribeResponse.FromString,
        )(event_log_service_pb2.SubscribeRequest(from_end=True))
        assert next(stream).HasField("caught_up")
        time.sleep(1.0)
        assert stream.is_active()
        stream.cancel()
