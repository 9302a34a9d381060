"""CSV import with a column mapping: the Toronto file's mapping, a TOML one, bad rows, resume."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from incident_registry_client import (
    AreaKind,
    PeriodKind,
    RegistryClient,
    TimePrecision,
    WeaponKind,
)
from incident_registry_client.cli.checkpoint import ImportCheckpoint, path_for, save

from tests.cli.conftest import invoke, invoke_json, started
from tests.support.harness import ServerHarness

ROOT = Path(__file__).resolve().parents[2]
TORONTO_CSV = ROOT.parent / "shared" / "data" / "toronto_shootings.csv"
MAPPING = ROOT / "clients" / "examples" / "toronto_mapping.json"
SLICE = 400
TORONTO_ROWS = 6_295


@pytest.fixture
def toronto(tmp_path: Path) -> Iterator[ServerHarness]:
    """A registry of the Toronto catalog (its police divisions are the municipalities)."""
    server = started(tmp_path / "toronto", catalog="toronto")
    yield server
    server.stop()


@pytest.fixture
def toronto_slice(tmp_path: Path) -> Path:
    """The first SLICE rows of the real Toronto file."""
    if not TORONTO_CSV.is_file():
        pytest.fail(f"the Toronto shootings file is missing: expected it at {TORONTO_CSV}")
    with TORONTO_CSV.open(encoding="utf-8") as handle:
        head = [next(handle) for _ in range(SLICE + 1)]
    path = tmp_path / "toronto.csv"
    path.write_text("".join(head), encoding="utf-8")
    return path


def expected(path: Path) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Incidents and injured by (division, year), counted from the file with the csv module."""
    incidents: Counter[tuple[str, str]] = Counter()
    injured: Counter[tuple[str, str]] = Counter()
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = (row["DIVISION"], str(date.fromisoformat(row["OCC_DATE"]).year))
            incidents[key] += 1
            injured[key] += 0 if row["INJURIES"] == "NA" else int(row["INJURIES"])
    return incidents, injured


def test_the_toronto_mapping_imports_the_file_s_rows(toronto, toronto_slice):
    summary = invoke_json(toronto.target, "import", str(toronto_slice), "--mapping", str(MAPPING))
    assert (summary["kind"], summary["imported"], summary["skipped"]) == ("csv", SLICE, 0)
    with RegistryClient(toronto.target) as registry:
        head = registry.get_head().position
        rows = registry.get_area_statistics(
            area_kind=AreaKind.MUNICIPALITY, period_kind=PeriodKind.YEAR, min_position=head
        ).rows
        incidents, injured = expected(toronto_slice)
        assert Counter({(r.area_code, r.period): r.incidents for r in rows}) == incidents
        assert Counter({(r.area_code, r.period): r.injured for r in rows}) == +injured
        # Row 1 (GO-2004133803) has no hour: noon local time, known to the day.
        *_, first = registry.iter_incidents(query="Pelmo", page_size=500, min_position=head)
        incident = registry.get_incident(incident_id=first.incident_id).state
    assert incident.external_reference == "GO-2004133803"
    assert incident.occurred_at_precision is TimePrecision.DAY
    assert incident.occurred_at.isoformat() == "2004-01-01T17:00:00+00:00"  # 12:00 in Toronto
    assert incident.location is not None
    assert incident.weapons == ()
    assert incident.sources[0].reference == "GO-2004133803"


def test_importing_the_file_again_replays_every_row(toronto, toronto_slice):
    invoke(toronto.target, "import", str(toronto_slice), "--mapping", str(MAPPING))
    again = invoke_json(toronto.target, "import", str(toronto_slice), "--mapping", str(MAPPING))
    assert (again["imported"], again["skipped"]) == (0, SLICE)
    assert (
        "replayed 400 recorded before"
        in invoke(toronto.target, "import", str(toronto_slice), "--mapping", str(MAPPING)).stdout
    )


def test_a_csv_import_resumes_after_its_checkpoint(toronto, toronto_slice):
    # Rows 1-250 landed, but the checkpoint was last written at row 200.
    first = toronto_slice.with_name("first.csv")
    first.write_text("".join(toronto_slice.read_text().splitlines(keepends=True)[:251]))
    invoke(toronto.target, "import", str(first), "--mapping", str(MAPPING))
    save(path_for(toronto_slice), ImportCheckpoint(str(toronto_slice), "csv", toronto.target, 200))
    result = invoke(
        toronto.target, "--json", "import", str(toronto_slice), "--mapping", str(MAPPING)
    )
    assert "resuming after row 200" in result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["skipped"]) == (SLICE - 250, 50)
    with RegistryClient(toronto.target) as registry:
        assert registry.get_head().position == SLICE


SYNTHETIC_MAPPING = """
null_values = ["", "-"]
delimiter = ";"

[row_key]
columns = ["source", "number"]
prefix = "synthetic:"

[occurred_at]
column = "when"
timezone = "Europe/Brussels"

[reported_at]
column = "reported"
format = "%d/%m/%Y %H:%M"
timezone = "Europe/Brussels"

[municipality]
column = "commune"
values = { "Anderlecht" = "21001", "Forest" = "21007", "Elsewhere" = "" }

[killed]
column = "dead"

[injured]
column = "hurt"

[weapons]
column = "weapons"
separator = "+"
values = { "AK-47" = "assault_rifle", "pistol" = "handgun", "knife" = "" }

[drug_nexus]
column = "drugs"
true_values = ["oui"]

[address]
column = "place"
"""
ROWS = [
    "source;number;when;reported;commune;dead;hurt;weapons;drugs;place",
    "press;1;2025-02-05T06:10;05/02/2025 06:40;Anderlecht;-;-;AK-47+AK-47;oui;Clemenceau",
    "press;2;2025-02-06T08:00;06/02/2025 09:00;Forest;0;1;pistol;non;",
    "press;3;2025-02-06T09:00;06/02/2025 09:30;Elsewhere;0;0;;;",
]


def write_synthetic(folder: Path, rows: list[str]) -> tuple[Path, Path]:
    mapping = folder / "mapping.toml"
    mapping.write_text(SYNTHETIC_MAPPING.replace('"Elsewhere" = ""', '"Elsewhere" = "99999"'))
    data = folder / "shootings.csv"
    data.write_text("\n".join(rows) + "\n")
    return mapping, data


def test_a_toml_mapping_maps_values_weapons_and_flags(cli_json, registry, tmp_path):
    mapping, data = write_synthetic(tmp_path, ROWS[:3])
    summary = cli_json("import", str(data), "--mapping", str(mapping))
    assert summary["imported"] == 2
    clemenceau, forest = sorted(
        (
            registry.get_incident(incident_id=i.incident_id).state
            for i in registry.iter_incidents(min_position=summary["last_position"])
        ),
        key=lambda state: state.occurred_at,
    )
    assert clemenceau.occurred_at.isoformat() == "2025-02-05T05:10:00+00:00"
    assert clemenceau.occurred_at_precision is TimePrecision.MINUTE
    assert clemenceau.reported_at.isoformat() == "2025-02-05T05:40:00+00:00"
    (weapon,) = clemenceau.weapons
    assert (weapon.kind, weapon.count) == (WeaponKind.ASSAULT_RIFLE, 2)
    assert (clemenceau.drug_nexus, clemenceau.killed, clemenceau.address) == (True, 0, "Clemenceau")
    assert (forest.municipality_code, forest.injured, forest.drug_nexus) == ("21007", 1, False)
    assert forest.weapons[0].kind is WeaponKind.HANDGUN


def test_rows_the_registry_refuses_stop_the_import_or_are_left_out(cli, cli_json, tmp_path):
    mapping, data = write_synthetic(tmp_path, ROWS)
    refused = cli("import", str(data), "--mapping", str(mapping), code=4)
    assert "row 3" in refused.stderr
    assert "municipality_code" in refused.stderr
    skipped = cli_json("import", str(data), "--mapping", str(mapping), "--skip-invalid")
    assert (skipped["imported"], skipped["rejected"]) == (2, 1)


def test_values_mapped_to_nothing_leave_the_row_out(cli_json, tmp_path):
    mapping, data = write_synthetic(tmp_path, [*ROWS[:2], ROWS[3]])
    mapping.write_text(SYNTHETIC_MAPPING)  # "Elsewhere" = "": not a municipality to import
    summary = cli_json("import", str(data), "--mapping", str(mapping))
    assert (summary["imported"], summary["rejected"]) == (1, 1)


def test_unreadable_rows_stop_the_import_or_are_left_out(cli, cli_json, tmp_path):
    bad = "press;9;yesterday;05/02/2025 06:40;Anderlecht;0;0;;;"
    mapping, data = write_synthetic(tmp_path, [*ROWS[:2], bad, ROWS[2]])
    stopped = cli("import", str(data), "--mapping", str(mapping), "--batch-size", "1", code=2)
    assert "row 2: column when" in stopped.stderr
    assert "the checkpoint stands at row 1" in stopped.stderr
    # Run again with --skip-invalid, it resumes after row 1 and leaves row 2 out.
    skipped = cli("import", str(data), "--mapping", str(mapping), "--skip-invalid")
    assert "resuming after row 1" in skipped.stderr
    assert "row 2 not imported: column when" in skipped.stderr
    assert "recorded 2 shootings, replayed 0 recorded before, 1 rows not imported" in (
        skipped.stdout
    )


def test_mapping_mistakes_are_usage_errors(cli, tmp_path):
    _, data = write_synthetic(tmp_path, ROWS[:2])
    assert "--mapping" in cli("import", str(data), code=2).stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"row_key": {"column": "id"}, "occurd_at": {}}))
    result = cli("import", str(data), "--mapping", str(wrong), code=2)
    assert "unknown mapping fields: occurd_at" in result.stderr
    wrong.write_text(json.dumps({"row_key": {"column": "id"}, "municipality": {"column": "c"}}))
    assert "needs 'occurred_at'" in cli("import", str(data), "--mapping", str(wrong), code=2).stderr


def test_the_whole_toronto_file_imported_after_an_interruption_matches_the_csv(toronto, tmp_path):
    # The import is interrupted halfway: the first half landed, its checkpoint was not written.
    rows = TORONTO_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    half = tmp_path / "half.csv"
    half.write_text("".join(rows[: 1 + (len(rows) - 1) // 2]), encoding="utf-8")
    invoke(toronto.target, "import", str(half), "--mapping", str(MAPPING))
    # Re-run on the whole file: the landed rows are replayed, the rest imported, once each.
    summary = invoke_json(toronto.target, "import", str(TORONTO_CSV), "--mapping", str(MAPPING))
    assert summary["imported"] + summary["skipped"] == TORONTO_ROWS
    with RegistryClient(toronto.target) as registry:
        head = registry.get_head().position
        assert head == TORONTO_ROWS  # exactly one ShootingReported per row
        served = registry.get_area_statistics(
            area_kind=AreaKind.MUNICIPALITY, period_kind=PeriodKind.YEAR, min_position=head
        )
    incidents, injured = expected(TORONTO_CSV)
    assert {(r.area_code, r.period): r.incidents for r in served.rows} == dict(incidents)
    assert {(r.area_code, r.period): r.injured for r in served.rows if r.injured} == {
        key: count for key, count in injured.items() if count
    }
