"""The audit trail through the client library: list_audit_entries and iter_audit_entries."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID, uuid4

import pytest
from incident_registry_client import (
    AsyncRegistryClient,
    AuditEntry,
    InvalidArgumentError,
    OutOfRangeError,
    PermissionDeniedError,
    RegistryClient,
)

from service.security.auth import ServerSecurity, build_guard
from service.security.settings import SecuritySettings
from tests.client.conftest import ACTOR, FAST_RETRY, report
from tests.security.conftest import role_token, write_tokens_file
from tests.support.harness import ServerHarness

OTHER = "bob@police.brussels"


def test_entries_name_who_recorded_what_newest_first(server, client):
    shooting = report(client)
    with RegistryClient(server.target, actor=OTHER, retry=FAST_RETRY) as bob:
        gang = bob.register_gang(name="Clan A", request_id="audit-client-gang-1")
    revised = client.revise_casualties(
        incident_id=shooting.aggregate_id, killed=1, injured=0, reason="died in hospital"
    )

    page = client.list_audit_entries(min_position=revised.position)
    assert page.position >= revised.position
    assert page.next_page_token == ""
    assert all(isinstance(e, AuditEntry) for e in page.items)
    assert [(e.position, e.actor, e.event_type) for e in page.items] == [
        (revised.position, ACTOR, "CasualtiesRevised"),
        (gang.position, OTHER, "GangRegistered"),
        (shooting.position, ACTOR, "ShootingReported"),
    ]
    registered = page.items[1]
    assert registered.stream_id == gang.aggregate_id
    assert isinstance(registered.stream_id, UUID)
    assert (registered.stream_type, registered.stream_version) == ("gang", 1)
    assert registered.request_id == registered.correlation_id == "audit-client-gang-1"
    assert isinstance(registered.recorded_at, datetime)
    assert registered.recorded_at.tzinfo is not None

    mine = client.list_audit_entries(actor=ACTOR, event_types=["ShootingReported"])
    assert [e.position for e in mine.items] == [shooting.position]
    incident = client.list_audit_entries(stream_id=shooting.aggregate_id)
    assert [e.stream_version for e in incident.items] == [2, 1]
    window = client.list_audit_entries(
        recorded_from=page.items[1].recorded_at, recorded_to=page.items[0].recorded_at
    )
    assert [e.position for e in window.items] == [gang.position]

    # The iterator pages through every entry of the selection.
    assert list(client.iter_audit_entries(page_size=1)) == list(page.items)
    assert [e.actor for e in client.iter_audit_entries(actor=OTHER, page_size=1)] == [OTHER]


def test_a_page_token_is_valid_only_with_its_filters(client):
    for _ in range(3):
        written = report(client)
    first = client.list_audit_entries(actor=ACTOR, page_size=2, min_position=written.position)
    assert len(first.items) == 2
    with pytest.raises(InvalidArgumentError) as refused:
        client.list_audit_entries(actor=OTHER, page_token=first.next_page_token)
    assert [v.field for v in refused.value.field_violations] == ["page_token"]
    rest = client.list_audit_entries(actor=ACTOR, page_size=2, page_token=first.next_page_token)
    assert len(rest.items) == 1


def test_arguments_are_checked(client):
    with pytest.raises(ValueError, match="naive"):
        client.list_audit_entries(recorded_from=datetime(2025, 2, 5))
    with pytest.raises(InvalidArgumentError) as refused:
        client.list_audit_entries(event_types=["Nope"], page_size=5000)
    assert {v.field for v in refused.value.field_violations} == {"event_types[0]", "page_size"}
    with pytest.raises(OutOfRangeError):
        client.list_audit_entries(min_position=10_000)
    assert client.list_audit_entries(stream_id=uuid4()).items == ()


def test_the_async_client_lists_and_iterates_the_same_entries(server, client):
    written = [report(client) for _ in range(3)]

    async def scenario() -> tuple[object, list[AuditEntry]]:
        async with AsyncRegistryClient(server.target, retry=FAST_RETRY) as registry:
            page = await registry.list_audit_entries(min_position=written[-1].position)
            entries = [e async for e in registry.iter_audit_entries(actor=ACTOR, page_size=2)]
            return page, entries

    page, entries = asyncio.run(scenario())
    assert [e.position for e in entries] == [w.position for w in reversed(written)]
    assert page == client.list_audit_entries()


def test_only_operators_may_read_the_audit_trail(tmp_path):
    tokens = write_tokens_file(tmp_path / "tokens.json")
    guard = build_guard(SecuritySettings(auth="tokens", auth_tokens_file=tokens))
    harness = ServerHarness(
        tmp_path / "registry.sqlite", security=ServerSecurity(guard=guard)
    ).start()
    try:
        with RegistryClient(
            harness.target, bearer_token=role_token("reporter"), retry=FAST_RETRY
        ) as reporter:
            written = report(reporter)
            with pytest.raises(PermissionDeniedError):
                reporter.list_audit_entries()
        with RegistryClient(
            harness.target, bearer_token=role_token("operator"), retry=FAST_RETRY
        ) as operator:
            (entry,) = operator.list_audit_entries(min_position=written.position).items
        assert entry.actor == "reporter-user"
    finally:
        harness.stop()
