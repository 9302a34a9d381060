"""The log: tail with filters, export (ranges, stdout, resume after a torn line), verify."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from incident_registry_client import RegistryClient, ShootingReport, TimePrecision

INCIDENTS = Path(sys.executable).with_name("incidents")


def shootings(registry: RegistryClient, count: int, *, tag: str = "s") -> int:
    """Report `count` shootings in one batch; the last position."""
    base = datetime(2025, 2, 5, 6, tzinfo=UTC)
    results = registry.report_shootings(
        shootings=[
            ShootingReport(
                occurred_at=base + timedelta(minutes=i),
                occurred_at_precision=TimePrecision.MINUTE,
                municipality_code="21001" if i % 2 else "21013",
                injured=i % 3,
                request_id=f"{tag}-{i}",
            )
            for i in range(count)
        ]
    )
    return max(r.position for r in results)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def logged(registry):
    """A log of ten shootings and a gang."""
    shootings(registry, 10)
    return registry.register_gang(name="Crew A").position


def test_tail_prints_the_log_from_the_start_and_filters(cli, logged):
    everything = cli("--json", "tail", "--from-start", "--until-caught-up").stdout.splitlines()
    assert [json.loads(line)["position"] for line in everything] == list(range(1, logged + 1))
    gangs = cli("--json", "tail", "--from-start", "--until-caught-up", "--stream-type", "gang")
    (gang,) = [json.loads(line) for line in gangs.stdout.splitlines()]
    assert gang["event_type"] == "GangRegistered"
    assert gang["payload"]["name"] == "Crew A"
    two = cli("tail", "--after", "3", "--limit", "2", "--tag", "municipality:21001").stdout
    assert [int(line.split()[0]) for line in two.splitlines()] == [4, 6]
    assert "ShootingReported" in two


def test_tail_refuses_two_starting_points(cli):
    assert "--after" in cli("tail", "--after", "1", "--from-start", code=2).output


def test_export_writes_one_line_per_event_and_refuses_to_append_blindly(
    cli_json, cli, logged, tmp_path
):
    path = tmp_path / "log.jsonl"
    summary = cli_json("export", str(path))
    assert (summary["exported"], summary["last_position"], summary["complete"]) == (
        logged,
        logged,
        True,
    )
    exported = lines_of(path)
    assert [e["position"] for e in exported] == list(range(1, logged + 1))
    assert {"stream_id", "stream_version", "event_type", "state_json", "tags"} <= set(exported[0])
    assert json.loads(exported[0]["state_json"])["municipality_code"] == "21013"
    assert "--resume" in cli("export", str(path), code=2).stderr


def test_export_resume_continues_after_the_last_line_and_cuts_a_torn_one(
    cli_json, registry, logged, tmp_path
):
    path = tmp_path / "log.jsonl"
    cli_json("export", str(path), "--to", "5")
    whole = path.read_bytes()
    # A crash mid-write leaves half a line: a resumed export cuts it off and goes on.
    path.write_bytes(whole + b'{"position":6,"stream_id":"')
    head = shootings(registry, 3, tag="later")
    summary = cli_json("export", str(path), "--resume")
    assert (summary["after_position"], summary["exported"]) == (5, head - 5)
    assert [e["position"] for e in lines_of(path)] == list(range(1, head + 1))
    assert cli_json("export", str(path), "--resume")["exported"] == 0


def test_export_a_range_to_stdout(cli, logged):
    out = cli("export", "-", "--after", "2", "--to", "4").stdout
    assert [json.loads(line)["position"] for line in out.splitlines()] == [3, 4]


def test_verify_passes_on_the_registry_and_on_its_export(cli, cli_json, logged, tmp_path):
    result = cli_json("verify")
    assert result["passed"] is True
    assert result["by_event_type"] == {"GangRegistered": 1, "ShootingReported": 10}
    assert (result["events"], result["streams"], result["last_position"]) == (logged, 11, logged)
    assert "PASS" in cli("verify").stdout
    path = tmp_path / "log.jsonl"
    cli("export", str(path))
    assert cli_json("verify", "--file", str(path))["passed"] is True
    # An export of a later range has streams that start above version 1.
    later = tmp_path / "later.jsonl"
    cli("export", str(later), "--after", "3")
    assert cli_json("verify", "--file", str(later), "--partial")["passed"] is True


def test_verify_fails_on_a_crafted_bad_export(cli, cli_json, registry, tmp_path):
    head = shootings(registry, 3)
    incident = next(registry.iter_incidents(min_position=head)).incident_id
    registry.revise_casualties(incident_id=incident, killed=1, injured=0, reason="died")
    good = tmp_path / "good.jsonl"
    cli("export", str(good))
    events = lines_of(good)
    bogus = {**events[0], "position": 90, "event_type": "ShootingCelebrated"}
    broken = {**events[1], "position": 91, "stream_version": 2, "state_json": "{not json"}
    gap = {**events[3], "position": 92, "stream_version": 7}  # the revision, renumbered
    backwards = {**events[2], "position": 50, "stream_id": events[0]["stream_id"]}
    crafted = [*events, bogus, broken, gap, backwards]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in crafted) + "this is not JSON\n")
    result = cli_json("verify", "--file", str(bad), code=1)
    assert result["passed"] is False
    problems = "\n".join(result["problems"])
    assert "unknown event type 'ShootingCelebrated'" in problems
    assert "the state is not JSON" in problems
    assert "version 7 follows" in problems
    assert "position 50 after 92" in problems
    assert "line 9: not JSON" in problems
    table = cli("verify", "--file", str(bad), code=1).stdout
    assert "FAIL" in table
    # A partial export starting mid-stream is a failure unless --partial says so.
    later = tmp_path / "later.jsonl"
    cli("export", str(later), "--after", "3")
    assert cli_json("verify", "--file", str(later), code=1)["problem_count"] == 1


def test_tail_follows_new_events_live(server, registry):
    # From the end of the log: only what is recorded after it started.
    shootings(registry, 2, tag="before")
    follower = subprocess.Popen(
        [str(INCIDENTS), "--target", server.target, "--json", "tail", "--limit", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        position = 0
        while follower.poll() is None and time.monotonic() < deadline:
            position = registry.register_gang(name=f"Crew {position}").position
            time.sleep(0.3)
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, stderr
    (event,) = [json.loads(line) for line in stdout.splitlines()]
    assert event["event_type"] == "GangRegistered"
    assert event["position"] > 2
