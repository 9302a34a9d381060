"""Read models from the command line: status, pause, resume, rebuild, reset and replay."""

from __future__ import annotations

from tests.cli.test_log import shootings

NAMES = {"asset_recovery", "audit", "incidents", "statistics", "unified_commands", "waves"}


def test_status_lists_every_projection(cli, cli_json, registry):
    head = shootings(registry, 5)
    registry.get_area_statistics(area_kind=_zone(), period_kind=_year(), min_position=head)
    found = cli_json("projections", "status")
    assert {p["name"] for p in found} == NAMES
    assert all(p["state"] == "running" and p["head"] == head for p in found)
    table = cli("projections", "status").stdout
    assert "unified_commands" in table
    assert f"{head}/{head}" in table


def test_pause_and_resume(cli, cli_json, registry):
    (paused,) = cli_json("projections", "pause", "statistics")
    assert paused["state"] == "paused"
    head = shootings(registry, 2)
    # A paused model that has not reached a position refuses to wait for it.
    refused = cli("stats", "areas", "--min-position", str(head), code=4)
    assert "FAILED_PRECONDITION" in refused.stderr
    (resumed,) = cli_json("projections", "resume", "statistics")
    assert resumed["state"] == "running"
    assert cli_json("stats", "areas", "--min-position", str(head))["rows"]


def test_rebuild_shows_progress_until_caught_up(cli, cli_json, registry):
    head = shootings(registry, 50)
    before = cli_json("stats", "areas", "--period", "day", "--min-position", str(head))["rows"]
    rebuilt = cli_json("projections", "rebuild", "statistics", "incidents")
    assert {p["name"] for p in rebuilt} == {"statistics", "incidents"}
    assert all(p["position"] >= head for p in rebuilt)
    assert cli_json("stats", "areas", "--period", "day")["rows"] == before
    assert "caught up in" in cli("projections", "rebuild", "waves").stdout
    started = cli_json("projections", "rebuild", "statistics", "--no-wait")
    assert [p["name"] for p in started] == ["statistics"]


def test_replay_rebuilds_every_read_model(cli, cli_json, registry):
    head = shootings(registry, 30)
    before = cli_json("list", "incidents", "--limit", "100", "--min-position", str(head))
    replayed = cli_json("replay")
    assert {p["name"] for p in replayed} == NAMES
    assert all(p["position"] >= head and p["state"] == "running" for p in replayed)
    assert cli_json("list", "incidents", "--limit", "100") == before
    assert {p["name"] for p in cli_json("replay", "--attach")} == NAMES


def test_reset_applies_only_later_events(cli_json, registry):
    first = shootings(registry, 4, tag="early")
    head = shootings(registry, 3, tag="late")
    (reset,) = cli_json("projections", "reset", "incidents", "--position", str(first))
    assert reset["position"] >= head
    assert len(cli_json("list", "incidents", "--min-position", str(head))) == 3


def test_an_unknown_projection_is_not_found(cli):
    assert "NOT_FOUND" in cli("projections", "pause", "nonsense", code=3).stderr


def _zone():
    from incident_registry_client import AreaKind  # noqa: PLC0415 - keeps the test short

    return AreaKind.POLICE_ZONE


def _year():
    from incident_registry_client import PeriodKind  # noqa: PLC0415

    return PeriodKind.YEAR
