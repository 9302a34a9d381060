"""`incidents audit`: who recorded what, when — as a table and as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from incident_registry_client import RegistryClient, TimePrecision, Weapon, WeaponKind, WriteResult

from tests.cli.conftest import invoke, invoke_json

ALICE = "alice@fedpol.example"
BOB = "bob@police.brussels"


def report(target: str, actor: str) -> WriteResult:
    with RegistryClient(target, actor=actor) as registry:
        return registry.report_shooting(
            occurred_at=datetime.now(UTC) - timedelta(hours=1),
            occurred_at_precision=TimePrecision.MINUTE,
            municipality_code="21001",
            weapons=[Weapon(WeaponKind.HANDGUN, 1)],
        )


def test_audit_lists_entries_newest_first_and_filters_them(server):
    target = server.target
    first = report(target, ALICE)
    with RegistryClient(target, actor=BOB) as registry:
        gang = registry.register_gang(name="Clan Audit", request_id="cli-audit-gang")
    last = report(target, ALICE)

    everything = invoke_json(target, "audit", "--min-position", str(last.position))
    assert [(e["position"], e["actor"], e["event_type"]) for e in everything] == [
        (last.position, ALICE, "ShootingReported"),
        (gang.position, BOB, "GangRegistered"),
        (first.position, ALICE, "ShootingReported"),
    ]
    assert everything[1]["stream_id"] == str(gang.aggregate_id)
    assert everything[1]["request_id"] == "cli-audit-gang"

    alice = invoke_json(target, "audit", "--actor", ALICE)
    assert [e["position"] for e in alice] == [last.position, first.position]
    gangs = invoke_json(target, "audit", "--type", "GangRegistered", "--type", "GangAliasAdded")
    assert [e["position"] for e in gangs] == [gang.position]
    stream = invoke_json(target, "audit", "--stream", str(first.aggregate_id))
    assert [e["position"] for e in stream] == [first.position]
    limited = invoke_json(target, "audit", "--limit", "2")
    assert [e["position"] for e in limited] == [last.position, gang.position]
    since = invoke_json(target, "audit", "--since", everything[1]["recorded_at"])
    assert [e["position"] for e in since] == [last.position, gang.position]
    until = invoke_json(target, "audit", "--until", everything[1]["recorded_at"])
    assert [e["position"] for e in until] == [first.position]

    # --json after the command works as the global option does.
    after = json.loads(invoke(target, "audit", "--actor", BOB, "--json").stdout)
    assert [e["position"] for e in after] == [gang.position]

    table = invoke(target, "audit").stdout
    assert "3 audit entries" in table
    assert ALICE in table
    assert BOB in table
    assert "GangRegistered" in table
    assert "cli-audit-gang" in table
    assert "gang v1" in table


def test_audit_refuses_bad_options(server):
    target = server.target
    refused = invoke(target, "audit", "--type", "ShotFired", code=4)
    assert "event_types[0]: unknown event type 'ShotFired'" in refused.stderr
    invoke(target, "audit", "--since", "yesterday", code=2)
    invoke(target, "audit", "--limit", "0", code=2)
