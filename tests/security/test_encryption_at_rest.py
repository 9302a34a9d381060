"""Encryption at rest: a stolen event store does not tell what was reported.

A shooting is reported through a real gRPC channel to a registry with a key; the raw bytes of
its event store — the SQLite files, or the PostgreSQL table read as stored and as text —
hold neither its description nor its address, while GetIncident answers them. Keys rotate
without rewriting the log, a missing key fails clearly (at start and at read time), a log
written partly before encryption was turned on stays readable, read models rebuilt over an
encrypted log equal those over a plaintext one, and an export of an encrypted log is
plaintext that imports into a registry with another key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as log_pb
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2_grpc,
    incident_query_service_pb2,
    incident_query_service_pb2_grpc,
    incident_service_pb2,
    incident_service_pb2_grpc,
)

from service.store.base import EventStoreBackend
from service.store.cipher import (
    KEY_BYTES,
    EncryptionKey,
    EncryptionKeyError,
    Keyring,
    KeyringCipher,
    is_encrypted,
    key_id_of,
)
from service.store.postgres import PostgresEventStore, PostgresSettings
from service.store.sqlite import SQLiteEventStore
from tests.e2e.test_server_process import free_port, wait_serving
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.harness import ServerHarness
from tests.support.postgres import _conninfo, fresh_schema
from tests.support.projections import rebuild_all
from tests.support.transfer import export_all, import_in_batches, populate

WAIT = 20.0
ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = "Zorglub witness saw a tangerine Vespa flee toward Clemenceau"
ADDRESS = "Rue de l'Escarboucle Cachée 4711"
LATER_DESCRIPTION = "second account: marigold helmet, rider with a limp"
LATER_ADDRESS = "Quai des Péniches Oubliées 909"


def key(key_id: str) -> EncryptionKey:
    """A fresh random 256-bit key under `key_id`."""
    return EncryptionKey(key_id, secrets.token_bytes(KEY_BYTES))


def cipher(*keys: EncryptionKey) -> KeyringCipher:
    """A keyring cipher whose first key is current."""
    return Keyring(tuple(keys), keys[0].key_id).cipher()


@dataclass
class Store:
    """An event store a test's servers run on, and its bytes as a thief would read them."""

    factory: Callable[[], EventStoreBackend]
    raw: Callable[[], bytes]
    """Everything the store holds: the SQLite files, or the events table read as text."""
    states: Callable[[], list[bytes]]
    """The stored states, in log order, as the database holds them."""


def sqlite_store(path: Path) -> Store:
    path.parent.mkdir(parents=True, exist_ok=True)

    def raw() -> bytes:
        # The database file and its write-ahead log: committed events may be in either.
        # (The read models are in another file, `registry-projections.sqlite`.)
        files = sorted(path.parent.glob(path.name + "*"))
        assert path in files
        return b"".join(f.read_bytes() for f in files)

    def states() -> list[bytes]:
        store = SQLiteEventStore(path)
        try:
            return [n.state for n in store.read_page(limit=100_000).notifications]
        finally:
            store.close()

    return Store(lambda: SQLiteEventStore(path), raw, states)


def postgres_store(settings: PostgresSettings) -> Store:
    table = f'"{settings.schema}".stored_events'

    def rows(statement: str) -> list[Any]:
        with psycopg.connect(_conninfo(settings)) as conn:
            return [row[0] for row in conn.execute(statement).fetchall()]

    def raw() -> bytes:
        # Each whole row as PostgreSQL prints it (bytea in hex, as a dump has it), then the
        # stored bytes themselves.
        text = "\n".join(rows(f"SELECT t::text FROM {table} t ORDER BY notification_id"))
        return text.encode() + b"".join(states())

    def states() -> list[bytes]:
        return [
            bytes(state) for state in rows(f"SELECT state FROM {table} ORDER BY notification_id")
        ]

    return Store(lambda: PostgresEventStore(settings), raw, states)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh event store: SQLite, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_store(tmp_path / "registry.sqlite")
        return
    server = request.getfixturevalue("postgres")
    with fresh_schema(server) as settings:
        yield postgres_store(settings)


def leaked(raw: bytes, *secrets_: str) -> list[str]:
    """The secrets found in `raw`, as text or as the hex of their UTF-8 (bytea as text)."""
    return [s for s in secrets_ if s.encode() in raw or s.encode().hex().encode() in raw.lower()]


def report(channel: grpc.Channel, description: str, address: str) -> str:
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    request = b.shooting(description=description, address=address)
    reply = stub.ReportShooting(request, metadata=ACTOR_METADATA, timeout=WAIT)
    return reply.result.aggregate_id


def get_incident(channel: grpc.Channel, incident_id: str) -> Any:
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    request = incident_service_pb2.GetIncidentRequest(incident_id=incident_id)
    return stub.GetIncident(request, timeout=WAIT).incident


def search(channel: grpc.Channel, query: str, min_position: int = 0) -> list[str]:
    stub = incident_query_service_pb2_grpc.IncidentQueryServiceStub(channel)
    request = incident_query_service_pb2.ListIncidentsRequest(
        query=query, min_position=min_position
    )
    return [i.incident_id for i in stub.ListIncidents(request, timeout=WAIT).incidents]


def head(channel: grpc.Channel) -> int:
    stub = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    return stub.GetHead(log_pb.GetHeadRequest(), timeout=WAIT).position


def failed(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def assert_key_missing(err: grpc.RpcError, key_id: str) -> None:
    """A clear FAILED_PRECONDITION naming the key id, with a precondition detail."""
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION, err
    assert f"key id {key_id!r}" in (err.details() or "")
    assert "Traceback" not in (err.details() or "")
    violation = b.detail(err, error_details_pb2.PreconditionFailure).violations[0]
    assert violation.type == EncryptionKeyError.RULE


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plaintext-control"])
def test_what_was_reported_is_not_in_the_stored_bytes(
    store: Store, tmp_path: Path, encrypted: bool
):
    server = ServerHarness(
        tmp_path / "registry.sqlite",
        backend_factory=store.factory,
        cipher=cipher(key("2026-11")) if encrypted else None,
    ).start()
    try:
        with server.channel() as channel:
            incident_id = report(channel, DESCRIPTION, ADDRESS)
            incident = get_incident(channel, incident_id)
            assert (incident.description, incident.address) == (DESCRIPTION, ADDRESS)
            # The read model keeps plaintext for its text search (see the README).
            assert search(channel, "tangerine Vespa", head(channel)) == [incident_id]
            stub = event_log_service_pb2_grpc.EventLogServiceStub(channel)
            page = stub.ReadAll(
                log_pb.ReadAllRequest(payload_format=log_pb.PAYLOAD_FORMAT_JSON), timeout=WAIT
            )
            assert json.loads(page.events[0].payload_json)["address"] == ADDRESS
        raw = store.raw()
        # What is not encrypted is there: the search itself works.
        assert b"ShootingReported" in raw
        states = store.states()
        assert len(states) == 1
        if encrypted:
            assert leaked(raw, DESCRIPTION, ADDRESS, "tangerine", "Escarboucle") == []
            assert is_encrypted(states[0])
            assert key_id_of(states[0]) == "2026-11"
        else:
            assert leaked(raw, DESCRIPTION, ADDRESS) == [DESCRIPTION, ADDRESS]
            assert states[0].startswith(b"{")
    finally:
        server.stop()


def test_keys_rotate_without_rewriting_the_log(store: Store, tmp_path: Path):
    a, b_ = key("A"), key("B")
    server = ServerHarness(
        tmp_path / "registry.sqlite", backend_factory=store.factory, cipher=cipher(a)
    ).start()
    try:
        with server.channel() as channel:
            first = report(channel, DESCRIPTION, ADDRESS)
        # Rotation: B becomes current, A stays for reading.
        server.cipher = cipher(b_, a)
        server.restart()
        with server.channel() as channel:
            second = report(channel, LATER_DESCRIPTION, LATER_ADDRESS)
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            stub.ReviseCasualties(b.casualties(first), metadata=ACTOR_METADATA, timeout=WAIT)
            assert get_incident(channel, first).description == DESCRIPTION
            assert get_incident(channel, first).killed == 1
            assert get_incident(channel, second).address == LATER_ADDRESS
            exported, _ = export_all(channel)
            assert [json.loads(e.state_json)["metadata"]["actor"] for e in exported] == [
                b.ACTOR
            ] * 3
        assert [key_id_of(s) for s in store.states()] == ["A", "B", "B"]
        assert leaked(store.raw(), DESCRIPTION, ADDRESS, LATER_DESCRIPTION, LATER_ADDRESS) == []

        # Without A, the log's head (B) opens, but A's events answer a clear error.
        server.cipher = cipher(b_)
        server.restart()
        with server.channel() as channel:
            assert get_incident(channel, second).description == LATER_DESCRIPTION
            err = failed(lambda: get_incident(channel, first))
            assert_key_missing(err, "A")
            assert "INCIDENTS_ENCRYPTION_KEY_FILE" in (err.details() or "")
            assert_key_missing(failed(lambda: export_all(channel)), "A")
    finally:
        server.stop()


def test_a_registry_without_the_key_of_the_head_refuses_to_start(store: Store, tmp_path: Path):
    k = key("k1")
    server = ServerHarness(
        tmp_path / "registry.sqlite", backend_factory=store.factory, cipher=cipher(k)
    ).start()
    with server.channel() as channel:
        report(channel, DESCRIPTION, ADDRESS)
    server.stop()
    for configured, reason in [
        (None, "no encryption key is configured"),
        (cipher(key("k2")), r"not among the configured key ids \(k2\)"),
        (cipher(key("k1")), "does not authenticate"),  # another key under the same id
    ]:
        server.cipher = configured
        with pytest.raises(EncryptionKeyError, match=reason) as caught:
            server.start()
        assert str(caught.value).startswith("refusing to start: the last event of the log")
        assert "key id 'k1'" in str(caught.value)
    server.cipher = cipher(k)
    server.start()  # the store was closed cleanly each time: the right key opens it
    server.stop()


def test_a_log_written_before_encryption_was_turned_on_stays_readable(store: Store, tmp_path: Path):
    server = ServerHarness(tmp_path / "registry.sqlite", backend_factory=store.factory).start()
    try:
        with server.channel() as channel:
            before = report(channel, DESCRIPTION, ADDRESS)
        server.cipher = cipher(key("k1"))
        server.restart()
        with server.channel() as channel:
            after = report(channel, LATER_DESCRIPTION, LATER_ADDRESS)
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            stub.ReviseCasualties(b.casualties(before), metadata=ACTOR_METADATA, timeout=WAIT)
            assert get_incident(channel, before).address == ADDRESS
            assert get_incident(channel, before).killed == 1
            assert get_incident(channel, after).address == LATER_ADDRESS
            position = head(channel)
            assert search(channel, "tangerine", position) == [before]
            assert search(channel, "marigold", position) == [after]
            _, finished = export_all(channel)
            assert finished.exported == 3
        states = store.states()
        assert [is_encrypted(s) for s in states] == [False, True, True]
        # Old events are never rewritten: what was stored in plaintext stays so.
        assert leaked(store.raw(), DESCRIPTION, LATER_DESCRIPTION) == [DESCRIPTION]
    finally:
        server.stop()


def test_read_models_over_an_encrypted_log_equal_those_over_a_plaintext_one_and_exports_are_plaintext(  # noqa: E501
    store: Store, tmp_path: Path
):
    plain = ServerHarness(tmp_path / "plain" / "registry.sqlite").start()
    encrypted = ServerHarness(
        tmp_path / "registry.sqlite", backend_factory=store.factory, cipher=cipher(key("k1"))
    ).start()
    other_path = tmp_path / "other" / "registry.sqlite"
    other_store = sqlite_store(other_path)
    other = ServerHarness(
        other_path, backend_factory=other_store.factory, cipher=cipher(key("k9"))
    ).start()
    try:
        with plain.channel() as channel:
            populate(channel)
            report(channel, DESCRIPTION, ADDRESS)
            original, _ = export_all(channel)
        with encrypted.channel() as channel:
            import_in_batches(channel, original, 500)
            copy, _ = export_all(channel)
        states = store.states()
        assert len(states) == len(original) > 30
        assert all(key_id_of(s) == "k1" for s in states)
        assert leaked(store.raw(), DESCRIPTION, ADDRESS) == []

        # The export of the encrypted log is plaintext: the same events as the original's.
        assert [json.loads(e.state_json) for e in copy] == [
            json.loads(e.state_json) for e in original
        ]
        assert DESCRIPTION in copy[-1].state_json
        assert [(e.position, e.stream_id, e.stream_version, e.tags) for e in copy] == [
            (e.position, e.stream_id, e.stream_version, e.tags) for e in original
        ]

        assert plain.registry is not None
        assert encrypted.registry is not None
        assert rebuild_all(encrypted.registry, tmp_path / "e.sqlite") == rebuild_all(
            plain.registry, tmp_path / "p.sqlite"
        )

        # Into a registry with another key: encrypted with that key, and the same log.
        with other.channel() as channel:
            import_in_batches(channel, copy, 2000)
            again = import_in_batches(channel, copy, 2000)
            assert (again[0].imported, again[0].skipped) == (0, len(copy))
            moved, _ = export_all(channel)
            assert get_incident(channel, copy[-1].stream_id).description == DESCRIPTION
        assert [json.loads(e.state_json) for e in moved] == [json.loads(e.state_json) for e in copy]
        assert {key_id_of(s) for s in other_store.states()} == {"k9"}
        assert leaked(other_store.raw(), DESCRIPTION, ADDRESS) == []
    finally:
        other.stop()
        encrypted.stop()
        plain.stop()


def _run_server(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    variables = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_ENCRYPTION_")},
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_SQLITE_PATH": str(tmp_path / "registry.sqlite"),
        "INCIDENTS_LOG_FORMAT": "json",
        "INCIDENTS_LOG_LEVEL": "info",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"127.0.0.1:{port}"


def _log_lines(output: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "event" in record:
            found[record["event"]] = record
    return found


def _stopped(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return output


def test_the_server_says_whether_it_encrypts_and_refuses_a_log_it_cannot_read(tmp_path: Path):
    keys = tmp_path / "keys"
    k = key("2026-11")
    encoded = base64.b64encode(k.key).decode()
    keys.write_text(f"# the first key is current\n2026-11 {encoded}\n", encoding="utf-8")
    processes: list[subprocess.Popen[str]] = []
    try:
        plain, target = _run_server(tmp_path)
        processes.append(plain)
        wait_serving(target)
        started = _log_lines(_stopped(plain))["server_started"]
        assert started["encryption_at_rest"] is False
        assert "encryption_key_id" not in started

        on, target = _run_server(tmp_path, INCIDENTS_ENCRYPTION_KEY_FILE=str(keys))
        processes.append(on)
        wait_serving(target)
        with grpc.insecure_channel(target) as channel:
            report(channel, DESCRIPTION, ADDRESS)
        output = _stopped(on)
        started = _log_lines(output)["server_started"]
        assert started["encryption_at_rest"] is True
        assert started["encryption_key_id"] == "2026-11"
        assert encoded not in output

        off, _ = _run_server(tmp_path)
        processes.append(off)
        output, _ = off.communicate(timeout=60)
        assert off.returncode == 1, output
        failure = _log_lines(output)["server_failed_to_start"]
        assert "refusing to start" in failure["error"]
        assert "key id '2026-11'" in failure["error"]
        assert "Traceback" not in output
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
