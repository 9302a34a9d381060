"""The server killed with SIGKILL under write load, then restarted on the same store and port.

Many clients report shootings without pause, each request under its own request id, and retry
the very same request (same id, same content) through the outage until it is answered.
Afterwards every acknowledged write is in the log exactly once, at the position it was
acknowledged with, nothing else was half-written, a request answered again after the restart
is a replay of its first answer, and every read model (applied in the server's process, so
also killed mid-page) equals a clean rebuild of the log.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2,
    incident_service_pb2_grpc,
    projection_admin_service_pb2_grpc,
)

from service.app.registry import Registry
from service.areas import load_catalog
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from tests.e2e.test_projection_worker import (
    _start,
    _wait_all_caught_up,
    _wait_serving,
    store_env,
)
from tests.e2e.test_replicas_under_load import read_log
from tests.e2e.test_server_process import free_port
from tests.support import builders as b
from tests.support.projections import live_models, rebuild_all

__all__ = ["store_env"]  # the fixture, parametrized over SQLite and PostgreSQL

CLIENTS = 32
LOAD_BEFORE_KILL = 1.5
OUTAGE = 0.3
LOAD_AFTER_RESTART = 1.5
CALL_TIMEOUT = 5.0
REQUEST_DEADLINE = 30.0
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
CHANNEL_OPTIONS = [
    # Reconnect soon after the restart instead of after gRPC's default backoff of seconds.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


@dataclass(frozen=True)
class Answer:
    """One answer to a request: where it was written, and whether it was a replay."""

    aggregate_id: str
    version: int
    position: int
    replayed: bool
    attempts: int
    sent_before_kill: bool
    answered_before_kill: bool


@dataclass
class Ledger:
    """What the clients issued and what the server acknowledged, shared by all clients."""

    killed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: dict[str, incident_service_pb2.ReportShootingRequest] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    retried_codes: Counter[str] = field(default_factory=Counter)


def report_until_answered(
    incidents: incident_service_pb2_grpc.IncidentServiceStub,
    request: incident_service_pb2.ReportShootingRequest,
    ledger: Ledger,
) -> Answer | None:
    """Send `request` until it is answered, retrying transport failures with a bounded backoff.

    Returns None (and records why) when the request got an error that is not retried or was
    still unanswered at its overall deadline.
    """
    sent_before_kill = not ledger.killed.is_set()
    deadline = time.monotonic() + REQUEST_DEADLINE
    backoff = 0.02
    attempts = 0
    while True:
        attempts += 1
        try:
            reply = incidents.ReportShooting(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            code = err.code()
            if code not in RETRYABLE:
                with ledger.lock:
                    ledger.failures.append(f"{request.request_id}: {code} {err}")
                return None
            with ledger.lock:
                ledger.retried_codes[code.name] += 1
            if time.monotonic() + backoff > deadline:
                with ledger.lock:
                    ledger.failures.append(f"{request.request_id}: unanswered after {attempts}")
                return None
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.5)
            continue
        result = reply.result
        return Answer(
            aggregate_id=result.aggregate_id,
            version=result.version,
            position=result.position,
            replayed=result.replayed,
            attempts=attempts,
            sent_before_kill=sent_before_kill,
            answered_before_kill=not ledger.killed.is_set(),
        )


def client(target: str, number: int, ledger: Ledger, stop: threading.Event) -> None:
    """Report shootings until `stop`; the request in flight is always finished."""
    with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
        sent = 0
        while not stop.is_set():
            request = b.shooting(killed=sent % 2, injured=1 + (number + sent) % 3)
            sent += 1
            with ledger.lock:
                ledger.requests[request.request_id] = request
            answer = report_until_answered(incidents, request, ledger)
            if answer is None:
                return
            with ledger.lock:
                ledger.answers[request.request_id] = answer


def resend_all(target: str, ledger: Ledger) -> dict[str, Answer]:
    """Send every acknowledged request again, as a client unsure of its answer would."""
    channels = [grpc.insecure_channel(target) for _ in range(8)]
    stubs = [incident_service_pb2_grpc.IncidentServiceStub(c) for c in channels]
    ids = sorted(ledger.answers)

    def again(index: int) -> tuple[str, Answer | None]:
        request_id = ids[index]
        answer = report_until_answered(stubs[index % 8], ledger.requests[request_id], ledger)
        return request_id, answer

    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(again, range(len(ids))))
    finally:
        for channel in channels:
            channel.close()
    replies: dict[str, Answer] = {}
    for request_id, answer in results:
        assert answer is not None, ledger.failures
        replies[request_id] = answer
    return replies


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if the process does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_a_server_killed_under_load_loses_nothing_and_doubles_nothing(
    tmp_path: Path, store_env: tuple[dict[str, str], Callable[[], EventStoreBackend]]
) -> None:
    store_settings, open_store = store_env
    port = free_port()
    target = f"127.0.0.1:{port}"
    env = {
        **store_settings,
        "INCIDENTS_LISTEN_ADDRESS": target,
        "INCIDENTS_LOG_LEVEL": "warning",
        "INCIDENTS_TEST_LOG_DIR": str(tmp_path),
    }
    processes = [_start("service", env)]
    ledger = Ledger()
    stop = threading.Event()
    clients = [
        threading.Thread(target=client, args=(target, n, ledger, stop), daemon=True)
        for n in range(CLIENTS)
    ]
    try:
        _wait_serving(target, env)
        for thread in clients:
            thread.start()
        time.sleep(LOAD_BEFORE_KILL)
        ledger.killed.set()
        processes[0].send_signal(signal.SIGKILL)
        assert processes[0].wait(timeout=10) == -signal.SIGKILL
        time.sleep(OUTAGE)
        processes.append(_start("service", env))
        _wait_serving(target, env)
        time.sleep(LOAD_AFTER_RESTART)
        stop.set()
        for thread in clients:
            thread.join(timeout=REQUEST_DEADLINE + CALL_TIMEOUT + 5)
        assert not any(thread.is_alive() for thread in clients), "a client never finished"
        assert not ledger.failures, ledger.failures[:10]

        answers = dict(ledger.answers)
        # Every issued request was acknowledged: none was abandoned mid-way.
        assert answers.keys() == ledger.requests.keys()
        acknowledged_before = [a for a in answers.values() if a.answered_before_kill]
        in_flight = [a for a in answers.values() if a.sent_before_kill and a.attempts > 1]
        after = [a for a in answers.values() if not a.sent_before_kill]
        assert acknowledged_before, "nothing was acknowledged before the kill"
        assert in_flight, "no request was retried through the outage"
        assert after, "nothing was acknowledged after the restart"
        assert ledger.retried_codes["UNAVAILABLE"] > 0
        # A first answer is a replay only when an earlier attempt was written before the kill.
        for answer in answers.values():
            assert not answer.replayed or answer.attempts > 1, answer

        # Asked again now, each request is a replay of the answer it got (before or after).
        for request_id, again in resend_all(target, ledger).items():
            first = answers[request_id]
            assert again.replayed, (request_id, first, again)
            assert (again.aggregate_id, again.version, again.position) == (
                first.aggregate_id,
                first.version,
                first.position,
            ), request_id

        # The log holds each acknowledged request once, where it was acknowledged, and nothing
        # else but the waves the waves projection derived.
        events = read_log(target)
        positions = [event.position for event in events]
        assert positions == sorted(set(positions))
        assert {e.event_type for e in events} <= {"ShootingReported", "WaveDetected"}
        reported = [e for e in events if e.event_type == "ShootingReported"]
        by_request: dict[str, list[Any]] = {}
        for event in reported:
            by_request.setdefault(event.metadata.request_id, []).append(event)
        assert by_request.keys() == answers.keys(), "an event without an acknowledged request"
        assert len(reported) == len(answers)
        assert len({e.stream_id for e in reported}) == len(reported)
        for request_id, (event,) in by_request.items():
            answer = answers[request_id]
            assert (event.stream_id, event.stream_version, event.position) == (
                answer.aggregate_id,
                answer.version,
                answer.position,
            ), request_id

        with grpc.insecure_channel(target) as channel:
            admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
            _wait_all_caught_up(admin, seconds=30)
        # Stopped, so that the SQLite view file is read as the server left it.
        stop_process(processes[-1])
        assert processes[-1].returncode == 0
    finally:
        stop.set()
        for process in processes:
            stop_process(process)
        for thread in clients:
            thread.join(timeout=1)

    store = open_store()
    registry = Registry(store, load_catalog("brussels"), wave_rule=WaveRule())
    try:
        head = store.head()
        live = live_models(registry, tmp_path / "projections.sqlite")
        assert len(live["incidents"]["proj_incidents"]) == len(answers)
        assert live == rebuild_all(registry, tmp_path / "rebuilt-all.sqlite")
        assert store.head() == head  # the rebuild recorded no second wave
    finally:
        registry.close()
