"""The end-of-run checks: the server still answers, the log holds every acknowledged write.

Once the load is over the whole log is read page by page up to its head: every acknowledged
write must be at the position it was acknowledged with (a report or a registration as the
stream version it was acknowledged as), no write may have been acknowledged beyond the head,
and the long-lived subscribers must reach the head within SUBSCRIBER_CATCH_UP seconds.
"""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
)

from tests.support.log_helpers import wait_for
from tests.support.soak.calls import Ack, Tally, code_name
from tests.support.soak.settings import SUBSCRIBER_CATCH_UP
from tests.support.soak.streams import LongStream


def read_log(target: str, timeout: float) -> tuple[int, dict[int, Any]]:
    """The head position and every event of the log by position."""
    events: dict[int, Any] = {}
    with grpc.insecure_channel(target) as channel:
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        head = log.GetHead(event_log_service_pb2.GetHeadRequest(), timeout=timeout).position
        position = 0
        while position < head:
            page = log.ReadAll(
                event_log_service_pb2.ReadAllRequest(from_position=position, limit=1000),
                timeout=timeout,
            )
            if not page.events:
                break
            for event in page.events:
                events[event.position] = event
            if page.next_position == 0:
                break
            position = page.next_position
    return head, events


def ledger_problems(acks: list[Ack], head: int, events: dict[int, Any]) -> list[str]:
    """Acknowledged writes missing from the log, or not where they were acknowledged."""
    problems: list[str] = []
    for ack in acks:
        event = events.get(ack.position)
        if event is None:
            problems.append(f"{ack.method} acknowledged at {ack.position} is not in the log")
        elif ack.method in ("ReportShooting", "RegisterGang") and (
            event.stream_id,
            event.stream_version,
        ) != (ack.aggregate_id, ack.version):
            problems.append(
                f"{ack.method} at {ack.position} is {event.stream_id} v{event.stream_version}"
            )
    last = max((ack.position for ack in acks), default=0)
    if last > head:
        problems.append(f"a write was acknowledged at {last}, beyond the head {head}")
    return problems[:20]


def check_log(target: str, timeout: float, tally: Tally, streams: list[LongStream]) -> list[str]:
    """Problems with the log after the load: unreadable, missing writes, subscribers behind."""
    try:
        head, events = read_log(target, timeout)
    except grpc.RpcError as err:
        code = code_name(err.code())
        return [f"reading the log after the load: {code} {err.details()}"]
    problems = ledger_problems(tally.acks, head, events)
    return problems + wait_for_subscribers(tally, [s.name for s in streams if s.subscribe], head)


def wait_for_subscribers(tally: Tally, names: list[str], head: int) -> list[str]:
    """Wait until every long-lived subscriber has reached `head`; name those that did not."""

    def behind() -> dict[str, int]:
        with tally.lock:
            reached = {n: tally.subscribed_positions.get(n, 0) for n in names}
        return {n: p for n, p in reached.items() if p < head}

    wait_for(lambda: not behind(), timeout=SUBSCRIBER_CATCH_UP, interval=0.2)
    return [f"{n} stopped at {p}, the head is {head}" for n, p in behind().items()]


def final_head(target: str, timeout: float, problems: list[str]) -> int:
    """The head of the log once the load is over: the server must still answer."""
    with grpc.insecure_channel(target) as channel:
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        try:
            return log.GetHead(event_log_service_pb2.GetHeadRequest(), timeout=timeout).position
        except grpc.RpcError as err:
            problems.append(f"GetHead after the load: {code_name(err.code())}")
            return 0
