"""PoliceCommandService over a real channel: unify, end, and one command per municipality."""

from __future__ import annotations

from uuid import uuid4

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import command_pb2

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNKNOWN_ID = str(uuid4())
ACTIVE, ENDED = command_pb2.COMMAND_STATUS_ACTIVE, command_pb2.COMMAND_STATUS_ENDED


@pytest.fixture
def command_id(commands):
    return commands.UnifyPoliceCommand(b.unify(), metadata=ACTOR_METADATA).result.aggregate_id


def test_unify_places_a_zone_and_a_municipality_under_one_active_command(
    server, commands, incidents
):
    trigger = checks.new_incident(incidents)
    decided, starts = b.ago(minutes=30), b.ago(minutes=10)
    request = b.unify(
        municipality_codes=["21004"],
        occurred_at=b.ts(decided),
        starts_at=b.ts(starts),
        triggering_incident_ids=[trigger],
    )
    result = commands.UnifyPoliceCommand(request, metadata=ACTOR_METADATA).result
    command_id = checks.written(server, result, version=1)

    got = commands.GetUnifiedCommand(b.get_command(command_id))
    command = got.command
    # The zone is expanded into its municipalities and merged with the named one.
    assert command.status == ACTIVE
    assert list(command.municipality_codes) == ["21001", "21004", "21007", "21013"]
    assert list(command.police_zone_codes) == ["5341"]
    assert (command.lead_authority, command.reason) == ("Mayor of Anderlecht", "wave of shootings")
    assert command.starts_at == b.ts(starts)
    assert command.planned_end_at == request.planned_end_at
    assert not command.HasField("ended_at")
    assert list(command.triggering_incident_ids) == [trigger]

    (event,) = got.history
    payload = checks.envelope(
        event,
        event_type="PoliceCommandUnified",
        stream_type="unified_command",
        stream_id=command_id,
        stream_version=1,
        request_id=request.request_id,
        payload_field="police_command_unified",
    )
    assert list(payload.municipality_codes) == list(command.municipality_codes)
    assert list(payload.triggering_incident_ids) == [trigger]
    assert payload.starts_at == b.ts(starts)
    assert event.occurred_at == b.ts(decided)
    # The municipalities' slots are written in the same transaction, after the command.
    assert event.position < result.position


def test_unify_starts_when_decided_unless_told_otherwise(commands):
    decided = b.ago(minutes=3)
    request = b.unify(occurred_at=b.ts(decided), planned_end_at=None)
    command_id = commands.UnifyPoliceCommand(request, metadata=ACTOR_METADATA).result.aggregate_id
    command = commands.GetUnifiedCommand(b.get_command(command_id)).command
    assert command.starts_at == b.ts(decided)
    assert not command.HasField("planned_end_at")


def test_end_unified_command_ends_it_and_frees_its_municipalities(server, commands, command_id):
    ended = b.ago(minutes=1)
    request = b.end_command(command_id, occurred_at=b.ts(ended), expected_version=1)
    result = commands.EndUnifiedCommand(request, metadata=ACTOR_METADATA).result
    assert checks.written(server, result, version=2) == command_id

    got = commands.GetUnifiedCommand(b.get_command(command_id))
    assert got.command.status == ENDED
    assert got.command.ended_at == b.ts(ended)
    assert got.command.end_reason == "calm restored"
    checks.positions_increase(got.history)
    payload = checks.envelope(
        got.history[1],
        event_type="UnifiedCommandEnded",
        stream_type="unified_command",
        stream_id=command_id,
        stream_version=2,
        request_id=request.request_id,
        payload_field="unified_command_ended",
    )
    assert payload.reason == "calm restored"
    # The same municipalities can come under a new command.
    again = commands.UnifyPoliceCommand(b.unify(), metadata=ACTOR_METADATA).result
    assert again.aggregate_id != command_id
    assert checks.written(server, again, version=1)


def test_unifying_a_municipality_already_under_an_active_command_fails(
    server, commands, command_id
):
    # Forest (21007) is in zone Midi, which the fixture placed under a command.
    request = b.unify(municipality_codes=["21004", "21007"], police_zone_codes=[])
    violation = checks.precondition(
        server,
        commands.UnifyPoliceCommand,
        request,
        rule="one_active_command_per_municipality",
        subject="municipalities/21007",
    )
    assert command_id in violation.description
    # A disjoint zone is still free.
    commands.UnifyPoliceCommand(b.unify(police_zone_codes=["5339"]), metadata=ACTOR_METADATA)


def test_unify_reports_every_held_municipality(server, commands, command_id):
    request = b.unify(police_zone_codes=["5341", "5344"])
    checks.precondition(
        server,
        commands.UnifyPoliceCommand,
        request,
        rule="one_active_command_per_municipality",
        subject="municipalities/21001,21007,21013",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"lead_authority": ""}, "lead_authority"),
        ({"reason": "  "}, "reason"),
        ({"police_zone_codes": []}, "municipality_codes"),
        ({"municipality_codes": ["21020"], "police_zone_codes": []}, "municipality_codes[0]"),
        ({"police_zone_codes": ["5341", "21001"]}, "police_zone_codes[1]"),
        (
            {"starts_at": b.ts(b.ago(hours=1)), "planned_end_at": b.ts(b.ago(hours=2))},
            "planned_end_at",
        ),
        ({"triggering_incident_ids": ["incident-1"]}, "triggering_incident_ids[0]"),
        ({"occurred_at": b.ts(b.ago(hours=-1))}, "occurred_at"),
        ({"expected_version": -1}, "expected_version"),
    ],
)
def test_unify_rejects_an_invalid_field_by_name(server, commands, overrides, field):
    checks.invalid(server, commands.UnifyPoliceCommand, b.unify(**overrides), field)


def test_unify_rejects_a_triggering_incident_given_twice(server, commands, incidents):
    trigger = checks.new_incident(incidents)
    request = b.unify(triggering_incident_ids=[trigger, trigger])
    checks.invalid(server, commands.UnifyPoliceCommand, request, "triggering_incident_ids[1]")


def test_unify_needs_recorded_triggering_incidents(server, commands, gangs):
    gang_id = checks.new_gang(gangs)
    for missing in (UNKNOWN_ID, gang_id):
        checks.not_found(
            server,
            commands.UnifyPoliceCommand,
            b.unify(triggering_incident_ids=[missing]),
            resource_type="incident",
            name=missing,
        )


def test_unify_conflict_and_request_reuse(server, commands):
    checks.version_conflict(
        server, commands.UnifyPoliceCommand, b.unify(expected_version=2), expected=2, actual=0
    )
    first = b.unify(police_zone_codes=["5342"])
    reuse = b.unify(police_zone_codes=["5343"], request_id=first.request_id)
    checks.request_id_reused(server, commands.UnifyPoliceCommand, first, reuse)


def test_ending_an_ended_command_fails_its_precondition(server, commands, command_id):
    commands.EndUnifiedCommand(b.end_command(command_id), metadata=ACTOR_METADATA)
    checks.precondition(
        server,
        commands.EndUnifiedCommand,
        b.end_command(command_id),
        rule="command_is_active",
        subject=f"unified_command/{command_id}",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"command_id": "cmd-1"}, "command_id"),
        ({"command_id": ""}, "command_id"),
        ({"request_id": ""}, "request_id"),
        ({"occurred_at": b.ts(b.ago(days=-1))}, "occurred_at"),
    ],
)
def test_end_unified_command_rejects_an_invalid_field_by_name(
    server, commands, command_id, overrides, field
):
    request = b.end_command(command_id, **overrides)
    checks.invalid(server, commands.EndUnifiedCommand, request, field)


def test_end_unified_command_not_found_conflict_and_reuse(server, commands, command_id, gangs):
    gang_id = checks.new_gang(gangs)
    for missing in (UNKNOWN_ID, gang_id):
        checks.not_found(
            server,
            commands.EndUnifiedCommand,
            b.end_command(missing),
            resource_type="unified_command",
            name=missing,
        )
    checks.version_conflict(
        server,
        commands.EndUnifiedCommand,
        b.end_command(command_id, expected_version=3),
        expected=3,
        actual=1,
    )
    first = b.end_command(command_id)
    reuse = b.end_command(command_id, request_id=first.request_id, reason="other")
    checks.request_id_reused(server, commands.EndUnifiedCommand, first, reuse)


def test_get_unified_command_rejects_malformed_and_unknown_ids(server, commands, incidents):
    err = checks.rejected(server, commands.GetUnifiedCommand, b.get_command("x"), INVALID)
    assert list(field_violations(err)) == ["command_id"]
    incident_id = checks.new_incident(incidents)
    for missing in (UNKNOWN_ID, incident_id):
        checks.not_found(
            server,
            commands.GetUnifiedCommand,
            b.get_command(missing),
            resource_type="unified_command",
            name=missing,
        )
