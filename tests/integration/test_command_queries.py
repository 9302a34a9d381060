"""CommandQueryService over a real channel, on SQLite and on PostgreSQL.

Commands are unified and ended through PoliceCommandService and read back from the unified
commands read model with min_position: who is under which command now, the history newest
first, its filters and pages, rejected requests, and a model rebuilt from the log that equals
the live one.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import command_pb2
from incident_registry_client.proto.incidents.v1 import command_query_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.command_query_service_pb2_grpc import (
    CommandQueryServiceStub,
)

from projections.commands_model import (
    CommandsProjection,
    CommandView,
    active_commands,
    list_commands,
)
from projections.store import ViewStore, sqlite_store
from service.areas import load_catalog
from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.projections import run_to_head, runner_for
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST, SAINT_GILLES = "21001", "21007", "21013"  # zone Midi
BRUXELLES, IXELLES = "21004", "21009"  # zone Bruxelles-Capitale/Ixelles
MIDI = "5341"
ACTIVE, ENDED = command_pb2.COMMAND_STATUS_ACTIVE, command_pb2.COMMAND_STATUS_ENDED
MAY_1 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
WAIT = 10.0


@pytest.fixture
def queries(channel):
    return CommandQueryServiceStub(channel)


def unify(commands, starts_at=MAY_1, **overrides):
    """Unify a command that started at `starts_at`; return (command id, log position)."""
    request = b.unify(
        occurred_at=b.ts(starts_at - timedelta(hours=1)), starts_at=b.ts(starts_at), **overrides
    )
    result = commands.UnifyPoliceCommand(request, metadata=ACTOR_METADATA).result
    return result.aggregate_id, result.position


def end(commands, command_id, ended_at, reason="calm restored"):
    """End a command at `ended_at`; return the log position."""
    request = b.end_command(command_id, occurred_at=b.ts(ended_at), reason=reason)
    return commands.EndUnifiedCommand(request, metadata=ACTOR_METADATA).result.position


def listed(queries, min_position=0, **selection):
    return queries.ListUnifiedCommands(
        pb.ListUnifiedCommandsRequest(min_position=min_position, **selection), timeout=WAIT
    )


def ids(reply):
    return [c.command_id for c in reply.commands]


def everything(queries, min_position=0, page_size=0, **selection):
    """Every command of a listing, following next_page_token; and the number of pages."""
    found, token, pages = [], "", 0
    while True:
        reply = listed(queries, min_position, page_size=page_size, page_token=token, **selection)
        found.extend(reply.commands)
        pages += 1
        token = reply.next_page_token
        if not token:
            return found, pages


def under(queries, min_position=0, codes=()):
    """Municipality code -> id of its active command ("" for none)."""
    reply = queries.GetMunicipalityCommands(
        pb.GetMunicipalityCommandsRequest(municipality_codes=codes, min_position=min_position),
        timeout=WAIT,
    )
    assert reply.position >= min_position
    return {m.municipality_code: m.active_command.command_id for m in reply.municipalities}


# --- Active commands and history ----------------------------------------------------------


def test_a_command_is_active_over_its_municipalities_until_it_is_ended(
    commands, incidents, queries
):
    trigger = checks.new_incident(incidents)
    first, unified = unify(
        commands,
        police_zone_codes=[MIDI],
        municipality_codes=[BRUXELLES],
        triggering_incident_ids=[trigger],
    )
    now = under(queries, unified)
    assert set(now) == set(BRUSSELS.municipalities)  # every municipality of the catalog
    assert {code for code, command in now.items() if command} == {
        ANDERLECHT,
        FOREST,
        SAINT_GILLES,
        BRUXELLES,
    }
    assert {now[ANDERLECHT], now[BRUXELLES]} == {first}
    reply = queries.GetMunicipalityCommands(
        pb.GetMunicipalityCommandsRequest(municipality_codes=[IXELLES, ANDERLECHT]), timeout=WAIT
    )
    anderlecht, ixelles = reply.municipalities  # ordered by code
    assert (anderlecht.municipality_code, anderlecht.police_zone_code) == (ANDERLECHT, MIDI)
    assert anderlecht.municipality_name == BRUSSELS.municipality(ANDERLECHT).name
    assert not ixelles.HasField("active_command")

    # The read model's command is the aggregate's, field for field.
    (listed_first,) = listed(queries, unified).commands
    assert listed_first == commands.GetUnifiedCommand(b.get_command(first)).command
    assert listed_first.status == ACTIVE
    assert list(listed_first.triggering_incident_ids) == [trigger]
    assert list(listed_first.police_zone_codes) == [MIDI]
    assert anderlecht.active_command == listed_first

    ended = end(commands, first, MAY_1 + timedelta(days=9), reason="arrests made")
    assert not any(under(queries, ended).values())
    (history,) = listed(queries, ended).commands
    assert history == commands.GetUnifiedCommand(b.get_command(first)).command
    assert (history.status, history.end_reason, history.version) == (ENDED, "arrests made", 2)
    assert history.ended_at == b.ts(MAY_1 + timedelta(days=9))

    # A second command over a municipality of the first, once that one ended.
    second, again = unify(
        commands,
        MAY_1 + timedelta(days=20),
        municipality_codes=[ANDERLECHT],
        police_zone_codes=[],
        reason="new wave",
    )
    assert under(queries, again, [ANDERLECHT, FOREST]) == {ANDERLECHT: second, FOREST: ""}
    reply = listed(queries, again)
    assert ids(reply) == [second, first]  # newest first
    assert [c.status for c in reply.commands] == [ACTIVE, ENDED]
    assert ids(listed(queries, again, municipality_codes=[ANDERLECHT])) == [second, first]
    assert ids(listed(queries, again, municipality_codes=[FOREST])) == [first]
    assert reply.position >= again


# --- Filters and pages --------------------------------------------------------------------


def test_municipality_activity_and_time_range_filters_select_commands(commands, queries):
    # Anderlecht: [1 May, 10 May); Forest: [5 May, open); Ixelles: [20 May, 25 May).
    early, _ = unify(commands, MAY_1, municipality_codes=[ANDERLECHT], police_zone_codes=[])
    end(commands, early, MAY_1 + timedelta(days=9))
    open_, _ = unify(
        commands, MAY_1 + timedelta(days=4), municipality_codes=[FOREST], police_zone_codes=[]
    )
    late, _ = unify(
        commands, MAY_1 + timedelta(days=19), municipality_codes=[IXELLES], police_zone_codes=[]
    )
    last = end(commands, late, MAY_1 + timedelta(days=24))

    assert ids(listed(queries, last)) == [late, open_, early]
    assert ids(listed(queries, last, active_only=True)) == [open_]
    assert ids(listed(queries, last, municipality_codes=[IXELLES, ANDERLECHT])) == [late, early]
    assert ids(listed(queries, last, municipality_codes=[BRUXELLES])) == []

    def active_between(start=None, stop=None, **more):
        selection = {}
        if start is not None:
            selection["active_from"] = b.ts(MAY_1 + timedelta(days=start))
        if stop is not None:
            selection["active_to"] = b.ts(MAY_1 + timedelta(days=stop))
        return ids(listed(queries, last, **selection, **more))

    assert active_between(0, 2) == [early]
    assert active_between(9, 10) == [open_]  # the early one ended at day 9
    assert active_between(8, 9) == [open_, early]
    assert active_between(4, 5) == [open_, early]
    assert active_between(26) == [open_]
    assert active_between(stop=4) == [early]
    assert active_between(21, 22) == [late, open_]
    assert active_between(21, 22, active_only=True) == [open_]
    assert active_between(21, 22, municipality_codes=[IXELLES]) == [late]


def test_pages_follow_each_other_newest_first_without_gaps_or_repeats(commands, queries):
    codes = sorted(BRUSSELS.municipalities)[:7]
    made = []
    for n, code in enumerate(codes):
        # Two commands share each start time: the later unification comes first.
        command_id, position = unify(
            commands,
            MAY_1 + timedelta(days=n // 2),
            municipality_codes=[code],
            police_zone_codes=[],
        )
        made.append(command_id)
    newest_first = [made[6], made[5], made[4], made[3], made[2], made[1], made[0]]

    whole = listed(queries, position)
    assert ids(whole) == newest_first
    assert whole.next_page_token == ""
    for size in (1, 2, 3, 7):
        found, pages = everything(queries, position, page_size=size)
        assert [c.command_id for c in found] == newest_first
        assert pages == -(-7 // size)  # no empty page at the end
    first_page = listed(queries, position, page_size=3)
    assert ids(first_page) == newest_first[:3]
    assert (
        ids(listed(queries, position, page_size=3, page_token=first_page.next_page_token))
        == (newest_first[3:6])
    )
    # Filters apply on every page.
    found, _ = everything(queries, position, page_size=1, municipality_codes=codes[2:5])
    assert [c.command_id for c in found] == [made[4], made[3], made[2]]
    # A page size above the maximum is lowered to it.
    assert ids(listed(queries, position, page_size=100_000)) == newest_first


# --- Rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "fields"),
    [
        (
            {"municipality_codes": ["99999", ANDERLECHT, ""]},
            {"municipality_codes[0]", "municipality_codes[2]"},
        ),
        ({"page_size": -1}, {"page_size"}),
        ({"page_token": "not a token"}, {"page_token"}),
        ({"page_token": base64.urlsafe_b64encode(b"x1:3:4").decode()}, {"page_token"}),
        ({"min_position": -1}, {"min_position"}),
        (
            {"active_from": b.ts(MAY_1), "active_to": b.ts(MAY_1), "page_size": -5},
            {"active_to", "page_size"},
        ),
    ],
)
def test_invalid_listings_are_invalid_arguments_naming_every_field(queries, selection, fields):
    with pytest.raises(grpc.RpcError) as failure:
        queries.ListUnifiedCommands(pb.ListUnifiedCommandsRequest(**selection), timeout=WAIT)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == fields


def test_invalid_municipality_selections_are_invalid_arguments(queries):
    with pytest.raises(grpc.RpcError) as failure:
        queries.GetMunicipalityCommands(
            pb.GetMunicipalityCommandsRequest(municipality_codes=["21001", "0"], min_position=-2),
            timeout=WAIT,
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == {"municipality_codes[1]", "min_position"}


def test_min_position_beyond_the_head_is_out_of_range_and_an_empty_log_lists_nothing(
    commands, queries
):
    empty = listed(queries)
    assert (list(empty.commands), empty.next_page_token, empty.position) == ([], "", 0)
    assert not any(under(queries).values())
    _, head = unify(commands)
    for call in (
        lambda: listed(queries, head + 1),
        lambda: under(queries, head + 5),
    ):
        with pytest.raises(grpc.RpcError) as failure:
            call()
        assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert set(field_violations(failure.value)) == {"min_position"}


# --- Rebuild equivalence ------------------------------------------------------------------


def model(store: ViewStore) -> tuple[list[CommandView], dict[str, CommandView]]:
    """The whole model: every command newest first, and every municipality's active one."""
    with store.transaction(write=False) as tx:
        return list_commands(tx, limit=10_000), active_commands(tx)


def test_the_live_model_equals_one_rebuilt_from_the_log(server, commands, gangs, queries, tmp_path):
    codes = sorted(BRUSSELS.municipalities)
    for n in range(12):
        code = codes[n % 5]
        command_id, _ = unify(
            commands, MAY_1 + timedelta(days=n), municipality_codes=[code], police_zone_codes=[]
        )
        if n < 9:
            end(commands, command_id, MAY_1 + timedelta(days=n, hours=12))
    last, _ = unify(
        commands,
        MAY_1 + timedelta(days=30),
        municipality_codes=[FOREST, SAINT_GILLES],
        police_zone_codes=[],
    )
    end(commands, last, MAY_1 + timedelta(days=31))
    # The last write is of no interest to the model: min_position still works.
    head = gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.position
    served, _ = everything(queries, head, page_size=4)
    assert len(served) == 13

    registry = server.registry
    view = sqlite_store(tmp_path / "rebuilt.sqlite")
    try:
        runner = runner_for(
            registry.backend, registry.mapper, view, CommandsProjection(), page_size=3
        )
        position, pages = run_to_head(runner)
        assert position == registry.backend.head()
        assert pages > 3
        rebuilt = model(view)
    finally:
        view.close()
    assert rebuilt == model(server.projections.store)
    assert [str(c.command_id) for c in rebuilt[0]] == [c.command_id for c in served]
