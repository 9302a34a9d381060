"""GangService over a real channel: registration, aliases, and every way to get them wrong."""

from __future__ import annotations

from uuid import uuid4

import grpc
import pytest

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNKNOWN_ID = str(uuid4())


@pytest.fixture
def gang_id(gangs):
    request = b.gang(name="Clan Anderlecht", aliases=["Les Gars du Midi"])
    return gangs.RegisterGang(request, metadata=ACTOR_METADATA).result.aggregate_id


def test_register_gang_records_name_aliases_and_territory(server, gangs):
    known_since = b.ago(days=400)
    request = b.gang(
        name="  Clan Wayez ", aliases=["CW", "Wayez Boys"], occurred_at=b.ts(known_since)
    )
    result = gangs.RegisterGang(request, metadata=ACTOR_METADATA).result
    gang_id = checks.written(server, result, version=1)

    got = gangs.GetGang(b.get_gang(gang_id))
    # The name is trimmed; aliases and territory come back in the order given.
    assert got.gang.gang_id == gang_id
    assert got.gang.name == "Clan Wayez"
    assert list(got.gang.aliases) == ["CW", "Wayez Boys"]
    assert list(got.gang.territory_municipality_codes) == ["21001", "21013"]
    assert got.gang.territory_description == request.territory_description
    assert got.gang.version == 1

    (event,) = got.history
    payload = checks.envelope(
        event,
        event_type="GangRegistered",
        stream_type="gang",
        stream_id=gang_id,
        stream_version=1,
        request_id=request.request_id,
        payload_field="gang_registered",
    )
    assert payload.name == "Clan Wayez"
    assert list(payload.aliases) == ["CW", "Wayez Boys"]
    assert list(payload.territory_municipality_codes) == ["21001", "21013"]
    # The gang became known long before the registry recorded it.
    assert event.occurred_at == b.ts(known_since)
    assert event.recorded_at == got.gang.recorded_at
    assert event.position == result.position


def test_add_gang_alias_appends_the_alias(server, gangs, gang_id):
    request = b.alias(gang_id, alias="  Midi Crew ", expected_version=1)
    result = gangs.AddGangAlias(request, metadata=ACTOR_METADATA).result
    assert checks.written(server, result, version=2) == gang_id

    got = gangs.GetGang(b.get_gang(gang_id))
    assert list(got.gang.aliases) == ["Les Gars du Midi", "Midi Crew"]
    assert got.gang.version == 2
    assert got.gang.updated_at == got.history[-1].recorded_at
    assert got.gang.recorded_at == got.history[0].recorded_at
    checks.positions_increase(got.history)
    payload = checks.envelope(
        got.history[1],
        event_type="GangAliasAdded",
        stream_type="gang",
        stream_id=gang_id,
        stream_version=2,
        request_id=request.request_id,
        payload_field="gang_alias_added",
    )
    assert payload.alias == "Midi Crew"
    assert got.history[1].position == result.position


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"expected_version": -2}, "expected_version"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 501}, "name"),
        ({"aliases": [" "]}, "aliases[0]"),
        ({"territory_municipality_codes": ["21001", "5341"]}, "territory_municipality_codes[1]"),
        ({"territory_municipality_codes": ["21001", "21001"]}, "territory_municipality_codes[1]"),
        ({"territory_description": "x" * 10_001}, "territory_description"),
        ({"occurred_at": b.ts(b.ago(hours=-1))}, "occurred_at"),
    ],
)
def test_register_gang_rejects_an_invalid_field_by_name(server, gangs, overrides, field):
    checks.invalid(server, gangs.RegisterGang, b.gang(**overrides), field)


@pytest.mark.parametrize(
    ("name", "aliases", "field"),
    [
        ("Clan X", ["clan x"], "aliases[0]"),
        ("Clan X", ["Les X", " les x "], "aliases[1]"),
        ("Clan X", ["Les X", "Les Y", "CLAN X"], "aliases[2]"),
    ],
)
def test_register_gang_names_the_duplicate_alias_by_its_index(server, gangs, name, aliases, field):
    # Aliases are compared trimmed and case-insensitively, with each other and with the name.
    checks.invalid(server, gangs.RegisterGang, b.gang(name=name, aliases=aliases), field)


def test_register_gang_conflict_and_request_reuse(server, gangs):
    checks.version_conflict(
        server, gangs.RegisterGang, b.gang(expected_version=1), expected=1, actual=0
    )
    first = b.gang()
    checks.request_id_reused(
        server, gangs.RegisterGang, first, b.gang(request_id=first.request_id, name="Other")
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"alias": ""}, "alias"),
        ({"alias": "\t"}, "alias"),
        ({"gang_id": "not-a-gang"}, "gang_id"),
        ({"gang_id": ""}, "gang_id"),
        ({"request_id": ""}, "request_id"),
        ({"occurred_at": b.ts(b.ago(hours=-1))}, "occurred_at"),
    ],
)
def test_add_gang_alias_rejects_an_invalid_field_by_name(server, gangs, gang_id, overrides, field):
    checks.invalid(server, gangs.AddGangAlias, b.alias(gang_id, **overrides), field)


@pytest.mark.parametrize(
    "duplicate", ["Clan Anderlecht", "les gars du midi", "  LES GARS DU MIDI "]
)
def test_add_gang_alias_rejects_a_name_or_alias_the_gang_already_has(
    server, gangs, gang_id, duplicate
):
    checks.precondition(
        server,
        gangs.AddGangAlias,
        b.alias(gang_id, alias=duplicate),
        rule="alias_is_new",
        subject=f"gang/{gang_id}",
    )


def test_add_gang_alias_twice_fails_the_second_time(server, gangs, gang_id):
    gangs.AddGangAlias(b.alias(gang_id, alias="Midi Crew"), metadata=ACTOR_METADATA)
    checks.precondition(
        server,
        gangs.AddGangAlias,
        b.alias(gang_id, alias="midi crew"),
        rule="alias_is_new",
        subject=f"gang/{gang_id}",
    )


def test_add_gang_alias_to_an_unknown_or_non_gang_id_is_not_found(server, gangs, incidents):
    incident_id = checks.new_incident(incidents)
    for missing in (UNKNOWN_ID, incident_id):
        checks.not_found(
            server, gangs.AddGangAlias, b.alias(missing), resource_type="gang", name=missing
        )


def test_add_gang_alias_conflict_and_request_reuse(server, gangs, gang_id):
    checks.version_conflict(
        server, gangs.AddGangAlias, b.alias(gang_id, expected_version=5), expected=5, actual=1
    )
    first = b.alias(gang_id)
    checks.request_id_reused(
        server, gangs.AddGangAlias, first, b.alias(gang_id, request_id=first.request_id)
    )


def test_get_gang_rejects_malformed_and_unknown_ids(server, gangs, incidents):
    err = checks.rejected(server, gangs.GetGang, b.get_gang("clan"), INVALID)
    assert list(field_violations(err)) == ["gang_id"]
    incident_id = checks.new_incident(incidents)
    for missing in (UNKNOWN_ID, incident_id):
        checks.not_found(
            server, gangs.GetGang, b.get_gang(missing), resource_type="gang", name=missing
        )
