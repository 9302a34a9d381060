"""RPC metrics and the access log of the registration-time wrapper, on a real grpc.aio server.

A probe service is registered with `add_service`, as the registry's services are. Each call
is made on a server without metrics and on one with them: what the client sees (responses,
status code, message) and the code logged must be the same, and the counts must match it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import structlog
from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry

from service.api import handlers
from service.api.handlers import CallPolicy, add_service
from service.domain.errors import NotFoundError, VersionConflictError
from service.metrics_grpc import RpcMetrics

SERVICE = "probe.v1.Probe"
Text = wrappers_pb2.StringValue
Context = grpc.aio.ServicerContext[Any, Any]


def _probe_service() -> ServiceDescriptor:
    """A service of one unary and one server-streaming RPC, both on StringValue."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    text = ".google.protobuf.StringValue"
    proto = descriptor_pb2.FileDescriptorProto(
        name="probe/v1/probe.proto",
        package="probe.v1",
        dependency=[wrappers_pb2.DESCRIPTOR.name],
        syntax="proto3",
    )
    proto.service.add(
        name="Probe",
        method=[
            descriptor_pb2.MethodDescriptorProto(name="Unary", input_type=text, output_type=text),
            descriptor_pb2.MethodDescriptorProto(
                name="WriterStream", input_type=text, output_type=text, server_streaming=True
            ),
        ],
    )
    pool.Add(proto)
    return pool.FindServiceByName(SERVICE)


PROBE = _probe_service()


class ProbeServicer:
    """Answers according to the request's text."""

    async def Unary(self, request: Text, context: Context) -> Text:  # noqa: N802 - RPC name
        match request.value:
            case "abort":
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
            case "missing":
                raise NotFoundError("Probe", "p-1")
            case "boom":
                raise ValueError("unexpected")
            case "forever":
                await asyncio.sleep(3600)
        return Text(value="pong:" + request.value)

    async def WriterStream(self, request: Text, context: Context) -> None:  # noqa: N802
        """Server streaming written with context.write, as the registry's servicers do."""
        count, _, end = request.value.partition(":")
        for i in range(int(count)):
            await context.write(Text(value=f"w{i}"))
        match end:
            case "abort":
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "stalled")
            case "conflict":
                raise VersionConflictError("p-1", 1, 2)
            case "forever":
                await asyncio.sleep(3600)


class LogRecorder:
    """Stands in for the wrapper's logger: keeps the code of every `rpc_completed` line."""

    def __init__(self) -> None:
        self.completed: list[tuple[str, str]] = []

    def info(self, event: str, **fields: Any) -> None:
        if event == "rpc_completed":
            # The method is bound to the log context of the call.
            rpc = structlog.contextvars.get_contextvars().get("rpc", "")
            self.completed.append((rpc, fields["code"]))

    def exception(self, event: str, **fields: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def logged(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    recorder = LogRecorder()
    monkeypatch.setattr(handlers, "log", recorder)
    return recorder


def _method(name: str) -> str:
    return f"/{SERVICE}/{name}"


@dataclass(frozen=True)
class Outcome:
    """What a client saw of one call."""

    responses: tuple[str, ...]
    code: grpc.StatusCode
    details: str


Call = Callable[[grpc.aio.Channel], Awaitable[Outcome]]


def _text(value: str) -> bytes:
    return Text(value=value).SerializeToString()


def _read(raw: bytes) -> str:
    return Text.FromString(raw).value


async def _ended(call: Any, responses: list[bytes]) -> Outcome:
    code = await call.code()
    details = await call.details()
    return Outcome(tuple(_read(r) for r in responses), code, details or "")


def unary(raw: bytes, name: str = "Unary") -> Call:
    async def run(channel: grpc.aio.Channel) -> Outcome:
        multi: Any = channel.unary_unary(_method(name))
        call = multi(raw)
        responses: list[bytes] = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            responses.append(await call)
        return await _ended(call, responses)

    return run


def server_stream(raw: bytes) -> Call:
    async def run(channel: grpc.aio.Channel) -> Outcome:
        multi: Any = channel.unary_stream(_method("WriterStream"))
        call = multi(raw)
        responses: list[bytes] = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for response in call:
                responses.append(response)
        return await _ended(call, responses)

    return run


@contextlib.asynccontextmanager
async def probe_server(metrics: RpcMetrics | None) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    add_service(server, ProbeServicer(), PROBE, CallPolicy(metrics=metrics))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


def _count(registry: CollectorRegistry, method: str, code: str) -> float | None:
    found: float | None = registry.get_sample_value(
        "incidents_grpc_requests_total", {"method": _method(method), "code": code}
    )
    return found


def _durations(registry: CollectorRegistry, method: str) -> float | None:
    found: float | None = registry.get_sample_value(
        "incidents_grpc_request_duration_seconds_count", {"method": _method(method)}
    )
    return found


def _in_flight(registry: CollectorRegistry, method: str) -> float | None:
    found: float | None = registry.get_sample_value(
        "incidents_grpc_requests_in_flight", {"method": _method(method)}
    )
    return found


def _total(registry: CollectorRegistry) -> float:
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "incidents_grpc_requests"
        for sample in metric.samples
        if sample.name == "incidents_grpc_requests_total"
    )


CASES: list[tuple[str, Call, str, tuple[str, ...]]] = [
    ("Unary", unary(_text("a")), "OK", ("pong:a",)),
    ("Unary", unary(_text("abort")), "NOT_FOUND", ()),
    ("Unary", unary(_text("missing")), "NOT_FOUND", ()),
    ("Unary", unary(_text("boom")), "INTERNAL", ()),
    ("Unary", unary(b"\xff\xff"), "INVALID_ARGUMENT", ()),
    ("Unary", unary(_text("b")), "OK", ("pong:b",)),
    ("WriterStream", server_stream(_text("3")), "OK", ("w0", "w1", "w2")),
    ("WriterStream", server_stream(_text("1:abort")), "RESOURCE_EXHAUSTED", ("w0",)),
    ("WriterStream", server_stream(_text("2:conflict")), "ABORTED", ("w0", "w1")),
]


def test_calls_end_as_without_metrics_and_are_logged_and_counted_by_method_and_code(
    logged: LogRecorder,
) -> None:
    registry = CollectorRegistry()

    async def run(metrics: RpcMetrics | None) -> list[Outcome]:
        async with probe_server(metrics) as channel:
            return [await call(channel) for _, call, _, _ in CASES]

    plain = asyncio.run(run(None))
    plain_log = list(logged.completed)
    logged.completed.clear()
    observed = asyncio.run(run(RpcMetrics(registry)))

    assert observed == plain
    expected_log = [(_method(method), code) for method, _, code, _ in CASES]
    assert plain_log == expected_log
    assert logged.completed == expected_log
    expected: dict[tuple[str, str], int] = {}
    for (method, _, code, responses), outcome in zip(CASES, observed, strict=True):
        assert (outcome.code.name, outcome.responses) == (code, responses)
        expected[method, code] = expected.get((method, code), 0) + 1
    for (method, code), count in expected.items():
        assert _count(registry, method, code) == count, (method, code)
    per_method: dict[str, int] = {}
    for (method, _), count in expected.items():
        per_method[method] = per_method.get(method, 0) + count
    for method, count in per_method.items():
        assert _durations(registry, method) == count, method
        assert _in_flight(registry, method) == 0
    # Nothing else was counted.
    assert _total(registry) == len(CASES)


def test_an_unknown_method_is_not_counted(logged: LogRecorder) -> None:
    registry = CollectorRegistry()

    async def run() -> Outcome:
        async with probe_server(RpcMetrics(registry)) as channel:
            return await unary(_text(""), name="Missing")(channel)

    assert asyncio.run(run()).code == grpc.StatusCode.UNIMPLEMENTED
    assert _total(registry) == 0
    assert logged.completed == []


async def _until(found: Callable[[], object]) -> None:
    for _ in range(200):
        if found():
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("method", ["Unary", "WriterStream"])
def test_a_call_is_in_flight_until_the_client_cancels_it_then_counted_cancelled(
    method: str, logged: LogRecorder
) -> None:
    registry = CollectorRegistry()

    async def run() -> tuple[float | None, float | None]:
        async with probe_server(RpcMetrics(registry)) as channel:
            if method == "Unary":
                multi: Any = channel.unary_unary(_method(method))
                call = multi(_text("forever"))
                await _until(lambda: _in_flight(registry, method))
            else:
                multi = channel.unary_stream(_method(method))
                call = multi(_text("1:forever"))
                assert _read(await call.read()) == "w0"
            during = _in_flight(registry, method)
            call.cancel()
            await _until(lambda: _durations(registry, method))
            return during, _in_flight(registry, method)

    during, after = asyncio.run(run())
    assert (during, after) == (1, 0)
    assert _count(registry, method, "CANCELLED") == 1
    assert _total(registry) == 1
    assert logged.completed == [(_method(method), "CANCELLED")]


@pytest.mark.parametrize("method", ["Unary", "WriterStream"])
def test_a_call_past_its_deadline_is_counted_deadline_exceeded(
    method: str, logged: LogRecorder
) -> None:
    registry = CollectorRegistry()

    async def run() -> grpc.StatusCode:
        async with probe_server(RpcMetrics(registry)) as channel:
            code = await asyncio.wait_for(_call_with_deadline(channel, method), 10)
            await _until(lambda: _durations(registry, method))
            return code

    assert asyncio.run(run()) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _count(registry, method, "DEADLINE_EXCEEDED") == 1
    assert _total(registry) == 1
    assert logged.completed == [(_method(method), "DEADLINE_EXCEEDED")]


async def _call_with_deadline(channel: grpc.aio.Channel, method: str) -> grpc.StatusCode:
    if method == "Unary":
        multi: Any = channel.unary_unary(_method(method))
        call = multi(_text("forever"), timeout=0.3)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call
    else:
        multi = channel.unary_stream(_method(method))
        call = multi(_text("1:forever"), timeout=0.3)
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for _ in call:
                pass
    code: grpc.StatusCode = await call.code()
    return code


@pytest.mark.parametrize("method", ["Unary", "WriterStream"])
def test_the_duration_covers_the_handler(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()

    async def slow(self: ProbeServicer, request: Text, context: Context) -> Text:
        await asyncio.sleep(0.2)
        return request

    monkeypatch.setattr(ProbeServicer, "Unary", slow)

    async def run() -> None:
        async with probe_server(RpcMetrics(registry)) as channel:
            if method == "Unary":
                unary_call: Any = channel.unary_unary(_method(method))
                await unary_call(_text("x"))
            else:
                stream_call: Any = channel.unary_stream(_method(method))
                [_ async for _ in stream_call(_text("2"))]

    asyncio.run(run())
    seconds = registry.get_sample_value(
        "incidents_grpc_request_duration_seconds_sum", {"method": _method(method)}
    )
    assert seconds is not None
    if method == "Unary":
        assert 0.2 <= seconds < 5
    else:
        assert 0 < seconds < 0.2
    fast_bucket = registry.get_sample_value(
        "incidents_grpc_request_duration_seconds_bucket",
        {"method": _method(method), "le": "0.1"},
    )
    assert fast_bucket == (0 if method == "Unary" else 1)


def test_method_metrics_count_each_code_once_per_call() -> None:
    registry = CollectorRegistry()
    method = RpcMetrics(registry).method(_method("Unary"))
    for code in (grpc.StatusCode.OK, grpc.StatusCode.OK, grpc.StatusCode.ABORTED):
        method.begin()
        assert _in_flight(registry, "Unary") == 1
        method.end(code, 0.002)
    assert (_count(registry, "Unary", "OK"), _count(registry, "Unary", "ABORTED")) == (2, 1)
    assert _in_flight(registry, "Unary") == 0
    assert _durations(registry, "Unary") == 3
