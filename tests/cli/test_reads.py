"""Reads as tables and JSON, over the demo's week: get, list and stats."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from service.domain.wave import WaveRule
from tests.cli.conftest import invoke, invoke_json, started
from tests.support.harness import ServerHarness


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """A server (detecting waves) holding the demo's week, and what the demo printed."""
    server: ServerHarness = started(tmp_path_factory.mktemp("reads"), wave_rule=WaveRule())
    try:
        shown = invoke_json(server.target, "demo")
        yield server.target, shown
    finally:
        server.stop()


def test_get_incident_shows_its_state_and_history(week):
    target, shown = week
    clemenceau = next(i for i in shown["incidents"] if "Clemenceau" in i["address"])
    table = invoke(target, "get", "incident", clemenceau["incident_id"]).stdout
    assert "Clemenceau metro station, Anderlecht" in table
    assert "ShootingReported" in table
    assert "AttributedToGang" in table
    found = invoke_json(target, "get", "incident", clemenceau["incident_id"])
    assert found["state"]["assailants_masked"] is True
    assert found["history"][0]["metadata"]["actor"] == "incidents-demo"
    assert [e["event_type"] for e in found["history"]][:2] == [
        "ShootingReported",
        "AttributedToGang",
    ]
    state_only = invoke_json(target, "get", "incident", clemenceau["incident_id"], "--no-history")
    assert state_only["incident_id"] == clemenceau["incident_id"]


def test_get_gang_command_and_case(week):
    target, shown = week
    summary = shown["incidents"][0]
    gang_id = summary["attributions"][0]["gang_id"]
    assert invoke_json(target, "get", "gang", gang_id)["state"]["name"].startswith("Crew")
    command = shown["municipality_commands"]["municipalities"][0]["active_command"]
    got = invoke_json(target, "get", "command", command["command_id"])
    assert got["state"]["police_zone_codes"] == ["5341"]
    assert invoke(target, "get", "case", str(uuid4()), code=3).stderr.startswith("error: NOT_FOUND")


def test_list_incidents_filters_and_orders_newest_first(week):
    target, _ = week
    anderlecht = invoke_json(target, "list", "incidents", "--municipality", "21001")
    assert [i["local_day"] for i in anderlecht] == ["2025-02-07", "2025-02-06", "2025-02-05"]
    deadly = invoke_json(target, "list", "incidents", "--min-killed", "1")
    assert len(deadly) == 1
    found = invoke_json(target, "list", "incidents", "--query", "Clemenceau", "--limit", "5")
    assert len(found) == 1
    unattributed = invoke_json(target, "list", "incidents", "--status", "unattributed")
    assert [i["municipality_code"] for i in unattributed] == ["21007"]
    table = invoke(target, "list", "incidents").stdout
    assert "4 incidents" in table
    assert "assault_rifle:2" in table


def test_list_waves_commands_and_municipalities(week):
    target, _ = week
    (wave,) = invoke_json(target, "list", "waves")
    assert (wave["area_code"], len(wave["incident_ids"])) == ("21001", 3)
    (command,) = invoke_json(target, "list", "commands", "--active-only")
    assert command["status"] == "active"
    table = invoke(target, "list", "municipalities", "--municipality", "21013").stdout
    assert "Saint-Gilles" in table
    assert "Single police command" in table


def test_stats_areas_breakdown_and_assets(week):
    target, _ = week
    zones = invoke_json(target, "stats", "areas", "--area-kind", "police_zone", "--period", "year")
    assert [(r["area_code"], r["incidents"], r["killed"], r["injured"]) for r in zones["rows"]] == [
        ("5341", 4, 1, 3)
    ]
    table = invoke(target, "stats", "areas", "--period", "iso_week").stdout
    assert "2025-W06" in table
    assert "total" in table
    breakdown = invoke_json(target, "stats", "breakdown")
    assert breakdown["totals"] == {"incidents": 4, "killed": 1, "injured": 3}
    assert "busiest hours" in invoke(target, "stats", "breakdown").stdout
    assets = invoke_json(target, "stats", "assets", "--group-by", "beneficiary")
    assert assets["currency"] == "EUR"
    assert assets["totals"]["reinvested_value_cents"] == 24_500_000
    table = invoke(target, "stats", "assets").stdout  # by month
    assert "2025-02" in table
    assert "338,500.00" in table


def test_a_period_in_the_wrong_form_is_refused(week):
    target, _ = week
    result = invoke(target, "stats", "breakdown", "--period", "month", "--from", "2025-W06", code=4)
    assert "from_period" in result.stderr
