"""`incidents demo`: the story's week populates every read model, and re-running adds nothing."""

from __future__ import annotations

import time

from service.domain.wave import WaveRule
from tests.cli.conftest import invoke, invoke_json, started

NAMES = {"asset_recovery", "audit", "incidents", "statistics", "unified_commands", "waves"}


def test_the_demo_populates_every_read_model_and_can_be_run_again(tmp_path):
    server = started(tmp_path / "demo", wave_rule=WaveRule())
    try:
        began = time.monotonic()
        shown = invoke_json(server.target, "demo")
        assert time.monotonic() - began < 30  # "within a minute of starting the server"
        assert (shown["new"], shown["replayed"]) == (20, 0)
        # Four shootings in three days: 1 killed, 3 injured, in Anderlecht and Forest.
        rows = shown["statistics"]["rows"]
        assert sum(r["incidents"] for r in rows) == 4
        assert (sum(r["killed"] for r in rows), sum(r["injured"] for r in rows)) == (1, 3)
        assert {r["area_code"] for r in rows} == {"21001", "21007"}
        assert len(shown["incidents"]) == 4
        (wave,) = shown["waves"]
        assert (wave["area_code"], len(wave["incident_ids"])) == ("21001", 3)
        commands = shown["municipality_commands"]["municipalities"]
        assert all(m["active_command"] for m in commands)
        totals = shown["asset_recovery"]["totals"]
        assert totals["seized_value_cents"] > totals["confiscated_value_cents"] > 0
        assert {
            r["beneficiary"]["kind"] for r in shown["asset_recovery"]["rows"] if r["beneficiary"]
        } == {
            "law_enforcement",
            "social_programme",
        }
        projections = invoke_json(server.target, "projections", "status")
        head = projections[0]["head"]
        assert {p["name"] for p in projections} == NAMES
        assert all(p["state"] == "running" and p["position"] == head for p in projections)

        # Running it again replays every write: the log does not grow.
        again = invoke_json(server.target, "demo")
        assert (again["new"], again["replayed"]) == (0, 20)
        assert invoke_json(server.target, "verify")["last_position"] == head
        table = invoke(server.target, "demo").stdout
        assert "0 writes recorded, 20 replayed" in table
        assert "wave in municipality 21001: 3 shootings" in table
        assert "Single police command agreed by the Brussels mayors" in table
    finally:
        server.stop()


def test_without_wave_detection_the_demo_says_so(cli):
    assert "waves: none detected" in cli("demo").stdout


def test_the_demo_needs_the_brussels_catalog(tmp_path):
    server = started(tmp_path / "toronto", catalog="toronto")
    try:
        result = invoke(server.target, "demo", code=4)
        assert "INCIDENTS_AREA_CATALOG=brussels" in result.stderr
    finally:
        server.stop()
