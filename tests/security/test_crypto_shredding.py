"""Crypto-shredding: a witness's name and statement reference are erased by destroying a key.

A shooting reported with a witness source keeps the witness's name and reference in its event
sealed with the incident's own key, so the raw store never holds them, even without
encryption at rest. GetIncident and the log reveal them while the key exists;
ErasePersonalData records who erased them and why and deletes the key in the same
transaction, after which every read shows the erasure markers, the raw stores (event store
and read models) hold neither the name nor the key, and a rebuild equals the live models.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as log_pb
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2_grpc,
    incident_pb2,
    incident_service_pb2,
    incident_service_pb2_grpc,
    projection_admin_service_pb2,
    projection_admin_service_pb2_grpc,
)

from projections.assembly import projection_list
from service.store.cipher import EncryptionKey, Keyring, is_encrypted
from service.store.field_cipher import ERASED_NAME, ERASED_REFERENCE, KEY_BYTES
from service.store.postgres import PostgresEventStore
from tests.support import builders as b
from tests.support.builders import ACTOR, ACTOR_METADATA
from tests.support.harness import ServerHarness
from tests.support.postgres import _conninfo
from tests.support.projections import dump_models, rebuild_all
from tests.support.stores import BOTH_STORES
from tests.support.transfer import export_all, import_in_batches

WAIT = 20.0
WITNESS_SURNAME = "Zwartbol-Quackenbush"
WITNESS_NAME = "Philomène " + WITNESS_SURNAME
WITNESS_REFERENCE = "PV-TEMOIN-77123-QX"
PRESS_NAME = "Le Soir Quotidien Vérifiable"
REASON = "data subject request DSR-2026-0042"


def witness_report() -> incident_service_pb2.ReportShootingRequest:
    """A shooting with a press source and a witness source."""
    return b.shooting(
        sources=[
            incident_pb2.Source(
                kind=incident_pb2.SOURCE_KIND_PRESS, name=PRESS_NAME, reference="https://x.test/1"
            ),
            incident_pb2.Source(
                kind=incident_pb2.SOURCE_KIND_WITNESS,
                name=WITNESS_NAME,
                reference=WITNESS_REFERENCE,
            ),
        ]
    )


def leaked(raw: bytes, *secrets_: str | bytes) -> list[str | bytes]:
    """The secrets found in `raw`, as bytes (UTF-8 for text) or as their hex (bytea as text)."""
    found: list[str | bytes] = []
    for secret in secrets_:
        data = secret.encode() if isinstance(secret, str) else secret
        if data in raw or data.hex().encode() in raw.lower():
            found.append(secret)
    return found


def raw_stores(server: ServerHarness) -> bytes:
    """Everything the event store and the read models hold, as a thief would read it: the
    SQLite files (with their write-ahead logs), or every table of the PostgreSQL schema as
    text."""
    assert server.registry is not None
    backend = server.registry.backend
    if isinstance(backend, PostgresEventStore):
        schema = backend.settings.schema
        with psycopg.connect(_conninfo(backend.settings)) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    [schema],
                ).fetchall()
            ]
            assert "subject_keys" in tables
            assert any(t.startswith("proj_incidents") for t in tables), tables
            text = [
                str(row[0])
                for table in tables
                for row in conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
            ]
        return "\n".join(text).encode()
    files = sorted(server.db_path.parent.glob(server.db_path.stem + "*"))
    assert any("projections" in f.name for f in files), files
    return b"".join(f.read_bytes() for f in files)


def sources_of(incident: Any) -> list[tuple[int, str, str]]:
    return [(s.kind, s.name, s.reference) for s in incident.sources]


def witness_sources(name: str, reference: str) -> list[tuple[int, str, str]]:
    return [
        (incident_pb2.SOURCE_KIND_PRESS, PRESS_NAME, "https://x.test/1"),
        (incident_pb2.SOURCE_KIND_WITNESS, name, reference),
    ]


def read_stream(channel: grpc.Channel, incident_id: str) -> list[Any]:
    stub = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    request = log_pb.ReadStreamRequest(
        stream_id=incident_id, payload_format=log_pb.PAYLOAD_FORMAT_BOTH
    )
    return list(stub.ReadStream(request, timeout=WAIT).events)


def wait_projections(channel: grpc.Channel) -> None:
    """Until every projection has processed the whole log."""
    admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
    deadline = time.monotonic() + WAIT
    while True:
        listed = admin.ListProjections(
            projection_admin_service_pb2.ListProjectionsRequest(), timeout=WAIT
        ).projections
        if all(p.lag_events == 0 and p.position == p.head for p in listed):
            return
        assert time.monotonic() < deadline, [(p.name, p.position, p.head) for p in listed]
        time.sleep(0.05)


def erase(incident_id: str, **overrides: Any) -> incident_service_pb2.ErasePersonalDataRequest:
    fields: dict[str, Any] = {
        "request_id": b.request_id(),
        "incident_id": incident_id,
        "reason": REASON,
        **overrides,
    }
    return incident_service_pb2.ErasePersonalDataRequest(**fields)


def failed(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


@BOTH_STORES
def test_a_witness_is_erased_everywhere_by_destroying_its_key(
    server: ServerHarness, channel: grpc.Channel, tmp_path: Path
):
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    assert server.registry is not None
    backend = server.registry.backend
    reply = stub.ReportShooting(witness_report(), metadata=ACTOR_METADATA, timeout=WAIT)
    incident_id = reply.result.aggregate_id
    subject = UUID(incident_id)

    # Sealed at rest, with no at-rest encryption: the press source is in clear (control).
    wait_projections(channel)
    raw = raw_stores(server)
    assert leaked(raw, PRESS_NAME) == [PRESS_NAME]
    assert leaked(raw, WITNESS_NAME, WITNESS_SURNAME, WITNESS_REFERENCE) == []
    (key,) = backend.read_subject_keys([subject]).values()
    assert len(key) == KEY_BYTES  # no at-rest keyring: the key itself

    # Revealed while the key exists.
    got = stub.GetIncident(b.get_incident(incident_id), timeout=WAIT)
    assert sources_of(got.incident) == witness_sources(WITNESS_NAME, WITNESS_REFERENCE)
    reported = got.history[0].shooting_reported
    assert [s.name for s in reported.sources] == [PRESS_NAME, WITNESS_NAME]
    (first,) = read_stream(channel, incident_id)
    assert json.loads(first.payload_json)["sources"][1]["name"] == WITNESS_NAME
    assert first.shooting_reported.sources[1].reference == WITNESS_REFERENCE

    # An export carries the sealed values, never the plaintext.
    exported, _ = export_all(channel)
    state = exported[0].state_json
    assert "pd1:" + subject.hex in state
    assert WITNESS_SURNAME not in state
    assert WITNESS_REFERENCE not in state

    request = erase(incident_id, expected_version=1)
    erased = stub.ErasePersonalData(request, metadata=ACTOR_METADATA, timeout=WAIT)
    assert (erased.result.version, erased.result.replayed) == (2, False)

    # Every read shows the markers; the press source is untouched.
    got = stub.GetIncident(b.get_incident(incident_id), timeout=WAIT)
    assert sources_of(got.incident) == witness_sources(ERASED_NAME, ERASED_REFERENCE)
    assert [e.event_type for e in got.history] == ["ShootingReported", "PersonalDataErased"]
    assert got.history[0].shooting_reported.sources[1].name == ERASED_NAME
    erasure = got.history[1]
    assert erasure.personal_data_erased.reason == REASON
    assert erasure.metadata.actor == ACTOR
    assert erasure.metadata.request_id == request.request_id
    events = read_stream(channel, incident_id)
    assert [e.event_type for e in events] == ["ShootingReported", "PersonalDataErased"]
    assert WITNESS_SURNAME not in events[0].payload_json
    assert json.loads(events[0].payload_json)["sources"][1]["name"] == ERASED_NAME
    assert json.loads(events[1].payload_json) == {"reason": REASON}
    assert events[1].metadata.actor == ACTOR

    # Neither the name nor the key is anywhere in the stores or the read models.
    assert backend.read_subject_keys([subject]) == {}
    wait_projections(channel)
    raw = raw_stores(server)
    assert leaked(raw, WITNESS_NAME, WITNESS_SURNAME, WITNESS_REFERENCE, key) == []
    assert leaked(raw, PRESS_NAME) == [PRESS_NAME]
    projections = projection_list(server.registry)
    live = dump_models(server.projections.store, projections)
    assert live["incidents"]["proj_incidents"], "the incidents model is filled"
    assert WITNESS_SURNAME not in repr(live)
    assert rebuild_all(server.registry, tmp_path / "rebuilt.sqlite") == live

    # A retry is replayed; a second erasure breaks the rule and writes nothing.
    again = stub.ErasePersonalData(request, metadata=ACTOR_METADATA, timeout=WAIT)
    assert (again.result.version, again.result.replayed) == (2, True)
    err = failed(lambda: stub.ErasePersonalData(erase(incident_id), timeout=WAIT))
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
    violation = b.detail(err, error_details_pb2.PreconditionFailure).violations[0]
    assert violation.type == "personal_data_not_erased"
    assert backend.head() == 2

    # After a restart too.
    server.restart()
    with server.channel() as fresh:
        again_stub = incident_service_pb2_grpc.IncidentServiceStub(fresh)
        got = again_stub.GetIncident(b.get_incident(incident_id), timeout=WAIT)
        assert sources_of(got.incident) == witness_sources(ERASED_NAME, ERASED_REFERENCE)


@BOTH_STORES
def test_erasure_is_checked_like_every_write(server: ServerHarness, channel: grpc.Channel):
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    incident_id = stub.ReportShooting(witness_report(), timeout=WAIT).result.aggregate_id
    err = failed(lambda: stub.ErasePersonalData(erase(incident_id, reason=""), timeout=WAIT))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in b.field_violations(err)
    err = failed(
        lambda: stub.ErasePersonalData(erase(incident_id, expected_version=5), timeout=WAIT)
    )
    assert err.code() is grpc.StatusCode.ABORTED
    unknown = "00000000-0000-4000-8000-000000000001"
    err = failed(lambda: stub.ErasePersonalData(erase(unknown), timeout=WAIT))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    # A value in the sealed format cannot be smuggled in as a witness name.
    forged = b.shooting(
        sources=[
            incident_pb2.Source(
                kind=incident_pb2.SOURCE_KIND_WITNESS, name="pd1:" + "0" * 32 + ":AAAA"
            )
        ]
    )
    err = failed(lambda: stub.ReportShooting(forged, timeout=WAIT))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "sources[0].name" in b.field_violations(err)


def test_incidents_without_witnesses_get_no_key(server: ServerHarness, channel: grpc.Channel):
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    incident_id = stub.ReportShooting(b.shooting(), timeout=WAIT).result.aggregate_id
    assert server.registry is not None
    assert server.registry.backend.read_subject_keys([UUID(incident_id)]) == {}
    # Erasing one records the erasure all the same.
    reply = stub.ErasePersonalData(erase(incident_id), timeout=WAIT)
    assert reply.result.version == 2


def test_an_import_without_the_subject_keys_reads_as_erased(
    server: ServerHarness, channel: grpc.Channel, tmp_path: Path
):
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    incident_id = stub.ReportShooting(witness_report(), timeout=WAIT).result.aggregate_id
    exported, _ = export_all(channel)
    target = ServerHarness(tmp_path / "target" / "registry.sqlite").start()
    try:
        with target.channel() as other:
            import_in_batches(other, exported, 10)
            other_stub = incident_service_pb2_grpc.IncidentServiceStub(other)
            got = other_stub.GetIncident(b.get_incident(incident_id), timeout=WAIT)
            assert sources_of(got.incident) == witness_sources(ERASED_NAME, ERASED_REFERENCE)
    finally:
        target.stop()


def test_subject_keys_are_wrapped_by_the_at_rest_keyring(tmp_path: Path):
    keyring = Keyring((EncryptionKey("2026-11", b"\x07" * 32),), "2026-11")
    server = ServerHarness(tmp_path / "registry.sqlite", cipher=keyring.cipher()).start()
    try:
        with server.channel() as channel:
            stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
            reply = stub.ReportShooting(witness_report(), timeout=WAIT)
            incident_id = reply.result.aggregate_id
            assert server.registry is not None
            (stored,) = server.registry.backend.read_subject_keys([UUID(incident_id)]).values()
            assert is_encrypted(stored)
            got = stub.GetIncident(b.get_incident(incident_id), timeout=WAIT)
            assert sources_of(got.incident) == witness_sources(WITNESS_NAME, WITNESS_REFERENCE)
            stub.ErasePersonalData(erase(incident_id), timeout=WAIT)
            got = stub.GetIncident(b.get_incident(incident_id), timeout=WAIT)
            assert sources_of(got.incident) == witness_sources(ERASED_NAME, ERASED_REFERENCE)
    finally:
        server.stop()


def test_the_clients_and_the_cli_erase_personal_data(server: ServerHarness):
    from incident_registry_client import (  # noqa: PLC0415 - the client's own surface
        AsyncRegistryClient,
        PersonalDataErased,
        RegistryClient,
        Source,
        SourceKind,
        TimePrecision,
    )

    from tests.cli.conftest import invoke_json  # noqa: PLC0415

    witness = Source(SourceKind.WITNESS, WITNESS_NAME, WITNESS_REFERENCE)
    report: dict[str, Any] = {
        "occurred_at": b.ago(hours=2),
        "occurred_at_precision": TimePrecision.HOUR,
        "municipality_code": "21001",
        "sources": [witness],
    }
    with RegistryClient(server.target, actor=ACTOR) as client:
        first = client.report_shooting(**report).aggregate_id
        second = client.report_shooting(**report).aggregate_id
        third = client.report_shooting(**report).aggregate_id
        assert client.get_incident(incident_id=first).state.sources == (witness,)
        written = client.erase_personal_data(
            incident_id=first, reason=REASON, request_id="erase-1", expected_version=1
        )
        assert (written.version, written.replayed) == (2, False)
        again = client.erase_personal_data(
            incident_id=first, reason=REASON, request_id="erase-1", expected_version=1
        )
        assert again.replayed
        fetched = client.get_incident(incident_id=first)
        (source,) = fetched.state.sources
        assert (source.name, source.reference) == (ERASED_NAME, ERASED_REFERENCE)
        assert fetched.history[-1].payload == PersonalDataErased(REASON)
        assert fetched.history[-1].metadata.actor == ACTOR

    async def erase_async() -> None:
        async with AsyncRegistryClient(server.target, actor=ACTOR) as registry:
            result = await registry.erase_personal_data(incident_id=second, reason=REASON)
            assert result.version == 2

    asyncio.run(erase_async())

    printed = invoke_json(server.target, "erase-personal-data", str(third), "--reason", REASON)
    assert (printed["aggregate_id"], printed["version"]) == (str(third), 2)
    with RegistryClient(server.target) as client:
        for incident_id in (second, third):
            (source,) = client.get_incident(incident_id=incident_id).state.sources
            assert source.name == ERASED_NAME
