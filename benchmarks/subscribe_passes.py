"""One pass through the benchmark log: in-process raw paging, or over gRPC to the server.

`raw_pass` pages through the SQLite log in this process (the baseline); `subscribe_pass` and
`read_all_pass` go through EventLogService.Subscribe / ReadAll over a grpc.aio channel and
check that exactly positions 1..N arrive, in order, in the form asked. `start_server` starts
the registry on a log file; `wait_ready` waits until its EventLogService is SERVING.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from servers import STARTUP_TIMEOUT_S, ServerProcess, free_ports, start_registry, wait_serving

from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import registry_mapper

SERVICE = pb.DESCRIPTOR.services_by_name["EventLogService"]
SUBSCRIBE_PATH = f"/{SERVICE.full_name}/Subscribe"
READ_ALL_PATH = f"/{SERVICE.full_name}/ReadAll"

FORMATS: dict[str, pb.PayloadFormat.ValueType] = {
    "TYPED": pb.PAYLOAD_FORMAT_TYPED,
    "JSON": pb.PAYLOAD_FORMAT_JSON,
    "BOTH": pb.PAYLOAD_FORMAT_BOTH,
}
DEFAULT_CONFIG = ("BOTH", 100)
RUN_TIMEOUT_S = 1800.0
STOP_TIMEOUT_S = 10.0
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


class CheckError(RuntimeError):
    """A run received events other than exactly positions 1..N in the form asked."""


# ------------------------------------------------------------------------------- raw baseline


@dataclass
class RunResult:
    """One measured pass through the log."""

    mode: str
    batch: int
    events: int
    seconds: float
    events_per_s: float
    messages: int = 0
    megabytes: float = 0.0
    max_message_kb: float = 0.0
    ratio: float = 0.0


def raw_pass(path: Path, page_size: int, *, decode: bool) -> RunResult:
    """Page through the whole log in-process, decoding every event when `decode`."""
    store = SQLiteEventStore(path)
    mapper = registry_mapper()
    to_domain_event = mapper.to_domain_event
    try:
        started = time.perf_counter()
        after = count = pages = 0
        while True:
            notifications = store.read_page(after=after, limit=page_size).notifications
            if not notifications:
                break
            if decode:
                decoded = [(n.id, to_domain_event(n)) for n in notifications]
                assert len(decoded) == len(notifications)
            count += len(notifications)
            pages += 1
            after = notifications[-1].id
        seconds = time.perf_counter() - started
    finally:
        store.close()
    mode = "raw decode" if decode else "raw read"
    return RunResult(mode, page_size, count, seconds, count / seconds, messages=pages)


# ------------------------------------------------------------------------------------- server


def start_server(sqlite_path: Path, workdir: Path, name: str) -> ServerProcess:
    """Start `python -m service` on `sqlite_path`, listening on a free port.

    The projections are not applied in the server (INCIDENTS_PROJECTIONS_IN_PROCESS=false, as
    in production, where a worker applies them): applied there, the waves projection would
    record WaveDetected events in the log while it is read, so the log would grow past the N
    events built, and catching the read models up would share the server's core with the pass.
    """
    port = free_ports(1)[0]
    return start_registry(
        workdir,
        port,
        sqlite_path=sqlite_path,
        name=name,
        stop_timeout=STOP_TIMEOUT_S,
        extra_env={"INCIDENTS_PROJECTIONS_IN_PROCESS": "false"},
    )


async def wait_ready(server: ServerProcess) -> None:
    """Poll the health service until EventLogService is SERVING."""
    await wait_serving(server, server.target, STARTUP_TIMEOUT_S, service=SERVICE.full_name)


# ---------------------------------------------------------------------------------- Subscribe


def _check_forms(envelope: Any, mode: str) -> None:
    typed = envelope.WhichOneof("payload") is not None
    as_json = bool(envelope.payload_json)
    wanted = {"TYPED": (True, False), "JSON": (False, True), "BOTH": (True, True)}[mode]
    if (typed, as_json) != wanted:
        msg = f"{mode}: event {envelope.position} has typed={typed}, json={as_json}"
        raise CheckError(msg)


async def subscribe_pass(
    channel: grpc.aio.Channel, mode: str, batch: int, expected: int, *, stop_after: int = 0
) -> RunResult:
    """Subscribe from the start until caught_up; check positions 1..expected arrive in order.

    With `stop_after`, stop once that many events arrived (a warm-up; nothing is checked
    beyond order).
    """
    call: grpc.aio.UnaryStreamMultiCallable[pb.SubscribeRequest, bytes] = channel.unary_stream(
        SUBSCRIBE_PATH,
        request_serializer=pb.SubscribeRequest.SerializeToString,
        response_deserializer=None,
    )
    request = pb.SubscribeRequest(
        from_start=True, max_batch_size=batch, payload_format=FORMATS[mode]
    )
    parse = pb.SubscribeResponse.FromString
    next_position = 1
    messages = total_bytes = largest = 0
    caught_up: int | None = None
    started = time.perf_counter()
    stream = call(request, timeout=RUN_TIMEOUT_S)
    try:
        async for raw in stream:
            size = len(raw)
            messages += 1
            total_bytes += size
            largest = max(largest, size)
            response = parse(raw)
            kind = response.WhichOneof("message")
            if kind == "events":
                events = response.events.events
                if not 0 < len(events) <= batch:
                    msg = f"{mode}/{batch}: a batch of {len(events)} events"
                    raise CheckError(msg)
                positions = [e.position for e in events]
                if positions != list(range(next_position, next_position + len(events))):
                    msg = (
                        f"{mode}/{batch}: expected position {next_position}, "
                        f"got {positions[0]}..{positions[-1]} ({len(events)} events)"
                    )
                    raise CheckError(msg)
                if next_position == 1 or len(events) < batch:
                    _check_forms(events[0], mode)
                next_position += len(events)
                if stop_after and next_position > stop_after:
                    break
            elif kind == "caught_up":
                caught_up = response.caught_up.position
                break
            elif kind == "fell_behind":
                msg = f"{mode}/{batch}: fell_behind during catch-up: {response.fell_behind}"
                raise CheckError(msg)
        seconds = time.perf_counter() - started
    finally:
        stream.cancel()
    count = next_position - 1
    if not stop_after and (count != expected or caught_up != expected):
        msg = f"{mode}/{batch}: received {count} events, caught_up at {caught_up}, not {expected}"
        raise CheckError(msg)
    return RunResult(
        mode,
        batch,
        count,
        seconds,
        count / seconds,
        messages=messages,
        megabytes=total_bytes / 1e6,
        max_message_kb=largest / 1e3,
    )


async def read_all_pass(channel: grpc.aio.Channel, limit: int, expected: int) -> RunResult:
    """Page through the log with ReadAll (BOTH forms); check positions 1..expected."""
    call: grpc.aio.UnaryUnaryMultiCallable[pb.ReadAllRequest, bytes] = channel.unary_unary(
        READ_ALL_PATH,
        request_serializer=pb.ReadAllRequest.SerializeToString,
        response_deserializer=None,
    )
    parse = pb.ReadAllResponse.FromString
    next_position = 1
    from_position = pages = total_bytes = largest = 0
    started = time.perf_counter()
    while True:
        request = pb.ReadAllRequest(
            from_position=from_position, limit=limit, payload_format=pb.PAYLOAD_FORMAT_BOTH
        )
        raw = await call(request, timeout=60.0)
        pages += 1
        total_bytes += len(raw)
        largest = max(largest, len(raw))
        reply = parse(raw)
        positions = [e.position for e in reply.events]
        if positions != list(range(next_position, next_position + len(positions))):
            msg = f"ReadAll: expected position {next_position} after {from_position}"
            raise CheckError(msg)
        next_position += len(positions)
        if not reply.next_position:
            break
        from_position = reply.next_position
    seconds = time.perf_counter() - started
    count = next_position - 1
    if count != expected:
        msg = f"ReadAll: read {count} events, not {expected}"
        raise CheckError(msg)
    return RunResult(
        "ReadAll",
        limit,
        count,
        seconds,
        count / seconds,
        messages=pages,
        megabytes=total_bytes / 1e6,
        max_message_kb=largest / 1e3,
    )
