"""The scripts in clients/examples run against a real server."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from incident_registry_client import (
    AssetItem,
    AssetKind,
    AssetRecoveryGrouping,
    Beneficiary,
    BeneficiaryKind,
)

from tests.client.conftest import ANDERLECHT, report

EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "examples"


def run_example(name: str, *args: str) -> str:
    finished = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_report_and_wait(server, client):
    out = run_example("report_and_wait.py", "--target", server.target, "--municipality", ANDERLECHT)
    assert "reported incident" in out
    assert f"  {ANDERLECHT} " in out
    assert "1 incidents, 0 killed, 1 injured" in out
    assert client.get_head().position == 1


def test_follow_log_with_a_limit(server, client):
    for _ in range(4):
        report(client)
    out = run_example("follow_log.py", "--target", server.target, "--limit", "3")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["1", "2", "3"]
    assert "ShootingReported" in lines[0]
    assert lines[-1] == "-- 3 events, resume with --after 3"

    resumed = run_example(
        "follow_log.py", "--target", server.target, "--after", "3", "--until-caught-up"
    )
    assert resumed.splitlines()[0].split()[0] == "4"
    assert "-- caught up at position 4" in resumed


def test_monthly_asset_report(server, client):
    year = datetime.now(UTC).year - 1
    case_id = client.record_asset_seizure(
        occurred_at=datetime(year, 6, 1, 8, tzinfo=UTC),
        case_reference="BR.21.L1.000042/24",
        municipality_code=ANDERLECHT,
        items=[AssetItem(AssetKind.CASH, 5_000_000, "banknotes")],
    ).aggregate_id
    client.confiscate_assets(
        case_id=case_id,
        amount_cents=4_000_000,
        court="Tribunal",
        decision_reference="JUG-1",
        occurred_at=datetime(year, 9, 15, 10, tzinfo=UTC),
    )
    written = client.reinvest_assets(
        case_id=case_id,
        amount_cents=1_000_055,
        beneficiary=Beneficiary(BeneficiaryKind.SOCIAL_PROGRAMME, "Youth sports"),
        occurred_at=datetime(year, 10, 2, 10, tzinfo=UTC),
    )
    # Wait for the read model through the client, so the script reads the same rows.
    client.get_asset_recovery_statistics(
        group_by=AssetRecoveryGrouping.GANG, min_position=written.position
    )
    out = run_example("monthly_asset_report.py", "--target", server.target, "--year", str(year))
    lines = out.splitlines()
    assert lines[0].startswith(f"Asset recovery {year} (EUR)")
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert rows[f"{year}-06"] == ["50,000.00", "0.00", "0.00", "0.00"]
    assert rows[f"{year}-09"] == ["0.00", "40,000.00", "0.00", "0.00"]
    assert rows[f"{year}-10"] == ["0.00", "0.00", "10,000.55", "0.00"]
    assert rows["total"] == ["50,000.00", "40,000.00", "10,000.55", "0.00"]
    assert lines[-1] == "reinvested share of the confiscated value: 25%"
