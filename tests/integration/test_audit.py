"""The audit trail over a real channel, on SQLite and on PostgreSQL: who did what, when.

Two actors write; AuditService.ListAuditEntries lists one entry per event, newest first, with
the actor, request and correlation ids and the time each event was recorded; it filters,
pages with tokens bound to the filters, and waits for min_position. With authentication on,
the actor is the caller's identity. A rebuilt model equals the one that ran live.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import audit_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import (
    audit_service_pb2_grpc,
    incident_service_pb2,
    incident_service_pb2_grpc,
    projection_admin_service_pb2,
    projection_admin_service_pb2_grpc,
)

from projections.audit import NAME
from projections.audit_model import AuditProjection
from service.security.auth import ServerSecurity, build_guard
from service.security.settings import SecuritySettings
from service.store.cipher import KEY_BYTES, EncryptionKey, Keyring
from tests.security.conftest import ALICE_TOKEN, role_token, role_user, write_tokens_file
from tests.support import builders as b
from tests.support.builders import field_violations
from tests.support.harness import ServerHarness
from tests.support.projections import dump_models, rebuild
from tests.support.stores import BOTH_STORES

ALICE = "alice@fedpol.example"
BOB = "bob@police.brussels"
WAIT = 15.0


def by(actor: str, correlation_id: str = "") -> tuple[tuple[str, str], ...]:
    """Call metadata naming the actor (auth off), and a correlation id when given."""
    headers = [("x-actor", actor)]
    if correlation_id:
        headers.append(("x-correlation-id", correlation_id))
    return tuple(headers)


@pytest.fixture
def audit(channel: grpc.Channel) -> audit_service_pb2_grpc.AuditServiceStub:
    return audit_service_pb2_grpc.AuditServiceStub(channel)


@pytest.fixture
def admin(channel: grpc.Channel) -> projection_admin_service_pb2_grpc.ProjectionAdminServiceStub:
    return projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)


def listing(audit: Any, **request: Any) -> pb.ListAuditEntriesResponse:
    reply: pb.ListAuditEntriesResponse = audit.ListAuditEntries(
        pb.ListAuditEntriesRequest(**request), timeout=WAIT
    )
    return reply


def every_page(audit: Any, **request: Any) -> tuple[list[pb.AuditEntry], int]:
    """Every entry of a selection, page by page; and how many pages it took."""
    entries: list[pb.AuditEntry] = []
    token, pages = "", 0
    while True:
        reply = listing(audit, page_token=token, **request)
        entries.extend(reply.entries)
        pages += 1
        token = reply.next_page_token
        if not token:
            return entries, pages


def positions(entries: Any) -> list[int]:
    return [e.position for e in entries]


def rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


class Story:
    """Writes by two actors: Alice reports and revises, Bob registers a gang and aliases it."""

    def __init__(self, incidents: Any, gangs: Any) -> None:
        report = b.shooting()
        self.report_request_id = report.request_id
        reply = incidents.ReportShooting(report, metadata=by(ALICE, "case-7"))
        self.incident_id = reply.result.aggregate_id
        self.reported = reply.result.position
        gang = b.gang()
        self.gang_request_id = gang.request_id
        reply = gangs.RegisterGang(gang, metadata=by(BOB))
        self.gang_id = reply.result.aggregate_id
        self.registered = reply.result.position
        self.revised = incidents.ReviseCasualties(
            b.casualties(self.incident_id, injured=2), metadata=by(ALICE)
        ).result.position
        self.aliased = gangs.AddGangAlias(b.alias(self.gang_id), metadata=by(BOB)).result.position
        self.last = self.aliased


@pytest.fixture
def story(incidents: Any, gangs: Any) -> Story:
    return Story(incidents, gangs)


# --- who did what, when -------------------------------------------------------------------


@BOTH_STORES
def test_every_event_is_an_entry_newest_first_with_its_actor_and_request(audit, story):
    before = datetime.now(UTC)
    reply = listing(audit, min_position=story.last)
    assert reply.position >= story.last
    assert positions(reply.entries) == [
        story.aliased,
        story.revised,
        story.registered,
        story.reported,
    ]
    assert [(e.actor, e.event_type) for e in reply.entries] == [
        (BOB, "GangAliasAdded"),
        (ALICE, "CasualtiesRevised"),
        (BOB, "GangRegistered"),
        (ALICE, "ShootingReported"),
    ]
    aliased, revised, registered, reported = reply.entries
    assert (reported.stream_id, reported.stream_type, reported.stream_version) == (
        story.incident_id,
        "incident",
        1,
    )
    assert (revised.stream_id, revised.stream_version) == (story.incident_id, 2)
    assert (registered.stream_id, registered.stream_type) == (story.gang_id, "gang")
    assert (aliased.stream_id, aliased.stream_version) == (story.gang_id, 2)
    assert reported.request_id == story.report_request_id
    assert reported.correlation_id == "case-7"
    # Without x-correlation-id the request id correlates the events of the request.
    assert registered.request_id == registered.correlation_id == story.gang_request_id
    recorded = [e.recorded_at.ToDatetime(tzinfo=UTC) for e in reply.entries]
    assert recorded == sorted(recorded, reverse=True)
    assert all(abs((before - at).total_seconds()) < 60 for at in recorded)


@BOTH_STORES
def test_entries_per_actor(audit, story):
    alice = listing(audit, actor=ALICE, min_position=story.last).entries
    assert positions(alice) == [story.revised, story.reported]
    assert {e.actor for e in alice} == {ALICE}
    bob = listing(audit, actor=BOB, min_position=story.last).entries
    assert positions(bob) == [story.aliased, story.registered]
    # Exact: neither a prefix nor another case matches.
    assert listing(audit, actor="alice").entries == []
    assert listing(audit, actor=ALICE.upper()).entries == []


@BOTH_STORES
def test_filters_combine(audit, story):
    everything = listing(audit, min_position=story.last).entries
    shootings = listing(audit, event_types=["ShootingReported", "GangRegistered"]).entries
    assert positions(shootings) == [story.registered, story.reported]
    gang = listing(audit, stream_id=story.gang_id).entries
    assert positions(gang) == [story.aliased, story.registered]
    both = listing(audit, actor=BOB, event_types=["GangRegistered"], stream_id=story.gang_id)
    assert positions(both.entries) == [story.registered]
    assert listing(audit, actor=ALICE, stream_id=story.gang_id).entries == []
    assert listing(audit, stream_id=str(uuid4())).entries == []

    # Half-open: recorded_from is inclusive, recorded_to exclusive.
    oldest_first = list(reversed(everything))
    second, fourth = oldest_first[1].recorded_at, oldest_first[3].recorded_at
    window = listing(audit, recorded_from=second, recorded_to=fourth).entries
    assert positions(window) == [story.revised, story.registered]
    since = listing(audit, recorded_from=fourth).entries
    assert positions(since) == [story.aliased]
    until = listing(audit, recorded_to=second).entries
    assert positions(until) == [story.reported]
    by_alice_since = listing(audit, actor=ALICE, recorded_from=second).entries
    assert positions(by_alice_since) == [story.revised]


@BOTH_STORES
def test_pages_follow_each_other_with_tokens_bound_to_the_filters(audit, incidents, story):
    head = max(
        incidents.ReportShooting(b.shooting(), metadata=by(ALICE)).result.position for _ in range(3)
    )
    everything = listing(audit, min_position=head).entries
    assert len(everything) == 7

    paged, pages = every_page(audit, page_size=2, min_position=head)
    assert (positions(paged), pages) == (positions(everything), 4)
    alice, pages = every_page(audit, actor=ALICE, page_size=2)
    assert positions(alice) == [e.position for e in everything if e.actor == ALICE]
    assert pages == 3

    first = listing(audit, actor=ALICE, page_size=2)
    assert len(first.entries) == 2
    assert first.next_page_token
    # The same filters with another page size (or min_position) continue the listing.
    following = listing(audit, actor=ALICE, page_size=3, page_token=first.next_page_token)
    assert positions(following.entries) == positions(alice)[2:5]
    # Other filters refuse it.
    for other in (
        {"actor": BOB},
        {"actor": ALICE, "event_types": ["ShootingReported"]},
        {"actor": ALICE, "stream_id": story.incident_id},
        {"actor": ALICE, "recorded_from": first.entries[0].recorded_at},
        {},
    ):
        err = rpc_error(lambda o=other: listing(audit, page_token=first.next_page_token, **o))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in field_violations(err)
    err = rpc_error(lambda: listing(audit, page_token="not-a-token"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == {"page_token": "is not a page token this service issued"}


def test_page_size_defaults_to_100_and_is_at_most_1000(audit, incidents):
    requests = [b.shooting() for _ in range(101)]
    reply = incidents.ReportShootings(
        incident_service_pb2.ReportShootingsRequest(requests=requests), metadata=by(ALICE)
    )
    last = max(r.position for r in reply.results)
    first = listing(audit, min_position=last)
    assert len(first.entries) == 100
    assert first.next_page_token
    rest = listing(audit, page_token=first.next_page_token)
    assert len(rest.entries) == 1
    assert rest.next_page_token == ""
    assert len(listing(audit, page_size=1000).entries) == 101


def test_invalid_requests_are_refused_naming_every_field(audit):
    err = rpc_error(
        lambda: listing(
            audit,
            actor="x" * 257,
            event_types=["ShootingReported", "ShotFired"],
            stream_id="not-a-uuid",
            recorded_from=b.ts(datetime(2025, 2, 5, tzinfo=UTC)),
            recorded_to=b.ts(datetime(2025, 2, 5, tzinfo=UTC)),
            page_size=1001,
            min_position=-1,
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(err)
    assert set(violations) == {
        "actor",
        "event_types[1]",
        "stream_id",
        "recorded_to",
        "page_size",
        "min_position",
    }
    assert violations["event_types[1]"] == "unknown event type 'ShotFired'"
    err = rpc_error(lambda: listing(audit, page_size=-1))
    assert field_violations(err) == {"page_size": "must be from 1 to 1000 (0: 100)"}


# --- read-your-writes -----------------------------------------------------------------------


@BOTH_STORES
def test_min_position_waits_for_the_write_and_refuses_beyond_the_head(audit, admin, incidents):
    written = incidents.ReportShooting(b.shooting(), metadata=by(ALICE)).result.position
    reply = listing(audit, min_position=written)
    assert reply.position >= written
    assert positions(reply.entries) == [written]

    err = rpc_error(lambda: listing(audit, min_position=written + 1000))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE

    # A paused model cannot reach a later write: refused, not answered without it.
    admin.PauseProjection(projection_admin_service_pb2.PauseProjectionRequest(name=NAME))
    _wait_paused(admin)
    later = incidents.ReportShooting(b.shooting(), metadata=by(BOB)).result.position
    err = rpc_error(lambda: listing(audit, min_position=later))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    admin.ResumeProjection(projection_admin_service_pb2.ResumeProjectionRequest(name=NAME))
    reply = listing(audit, min_position=later)
    assert [(e.position, e.actor) for e in reply.entries] == [(later, BOB), (written, ALICE)]


def _wait_paused(admin: Any) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        listed = admin.ListProjections(
            projection_admin_service_pb2.ListProjectionsRequest(), timeout=WAIT
        ).projections
        (audit_info,) = [p for p in listed if p.name == NAME]
        if audit_info.state == projection_admin_service_pb2.PROJECTION_STATE_PAUSED:
            return
        time.sleep(0.02)
    raise AssertionError("the audit projection did not pause")


# --- rebuilds -------------------------------------------------------------------------------


@BOTH_STORES
def test_a_rebuilt_model_equals_the_live_one(server, audit, admin, story, incidents, tmp_path):
    incidents.AmendIncident(b.amendment(story.incident_id), metadata=by(BOB))
    head = server.registry.backend.head()
    live_listing = listing(audit, min_position=head, page_size=1000).entries
    assert len(live_listing) == 5
    projection = AuditProjection()
    live = dump_models(server.projections.store, [projection])

    rebuilt = rebuild(
        server.registry.backend, server.registry.mapper, projection, tmp_path / "rebuilt.sqlite"
    )
    try:
        assert dump_models(rebuilt, [projection]) == live
    finally:
        rebuilt.close()
    assert len(live[NAME]["proj_audit_entries"]) == 5

    # Rebuilt in place through the admin service: the same entries again.
    admin.RebuildProjection(projection_admin_service_pb2.RebuildProjectionRequest(name=NAME))
    again = listing(audit, min_position=head, page_size=1000).entries
    assert list(again) == list(live_listing)


def test_entries_of_an_encrypted_log_are_read_through_the_mapper(tmp_path):
    key = EncryptionKey("audit-1", b"k" * KEY_BYTES)
    harness = ServerHarness(
        tmp_path / "registry.sqlite", cipher=Keyring((key,), key.key_id).cipher()
    ).start()
    try:
        with harness.channel() as channel:
            incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
            written = incidents.ReportShooting(b.shooting(), metadata=by(ALICE, "enc-1"))
            stub = audit_service_pb2_grpc.AuditServiceStub(channel)
            (entry,) = listing(stub, min_position=written.result.position).entries
        assert (entry.actor, entry.correlation_id) == (ALICE, "enc-1")
        assert entry.stream_id == written.result.aggregate_id
    finally:
        harness.stop()


# --- with authentication ----------------------------------------------------------------------


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[ServerHarness]:
    """A loopback server authenticating bearer tokens: one user per role, and alice."""
    tokens = write_tokens_file(tmp_path / "tokens.json")
    guard = build_guard(SecuritySettings(auth="tokens", auth_tokens_file=tokens))
    harness = ServerHarness(
        tmp_path / "registry.sqlite", security=ServerSecurity(guard=guard)
    ).start()
    yield harness
    harness.stop()


def bearer(token: str, actor: str = "") -> tuple[tuple[str, str], ...]:
    headers = [("authorization", f"Bearer {token}")]
    if actor:
        headers.append(("x-actor", actor))
    return tuple(headers)


def test_with_authentication_the_actor_is_the_callers_identity(token_server):
    with token_server.channel() as channel:
        incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        # The header's claim is ignored: the token says who is calling.
        mine = incidents.ReportShooting(
            b.shooting(), metadata=bearer(ALICE_TOKEN, actor="someone-else"), timeout=WAIT
        ).result.position
        theirs = incidents.ReportShooting(
            b.shooting(), metadata=bearer(role_token("reporter")), timeout=WAIT
        ).result.position

        def audited(token: str, **request: Any) -> pb.ListAuditEntriesResponse:
            reply: pb.ListAuditEntriesResponse = stub.ListAuditEntries(
                pb.ListAuditEntriesRequest(min_position=theirs, **request),
                metadata=bearer(token),
                timeout=WAIT,
            )
            return reply

        operator = role_token("operator")
        assert [(e.position, e.actor) for e in audited(operator).entries] == [
            (theirs, role_user("reporter")),
            (mine, "alice"),
        ]
        assert positions(audited(operator, actor="alice").entries) == [mine]
        assert audited(operator, actor="someone-else").entries == []
        assert positions(audited(role_token("admin"), actor="alice").entries) == [mine]

        # Who recorded what is for operators (and admins) only.
        for role in ("reporter", "investigator", "commander", "analyst"):
            err = rpc_error(lambda r=role: audited(role_token(r)))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED, role
        err = rpc_error(lambda: audited(ALICE_TOKEN))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
