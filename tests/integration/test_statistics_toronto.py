"""The statistics of the real Toronto shootings file equal totals counted from the CSV itself.

All 6,295 rows are reported through the application layer (not over gRPC, to stay fast:
concurrent writes are group-committed), the projection is run to the head of the log, and
its rows are compared with counts made independently from the file with the csv module.
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from projections.statistics_model import StatisticsProjection, query_statistics
from projections.store import ViewStore
from service.app.commands import ReportShooting
from service.app.registry import Registry
from service.app.results import WriteContext
from service.areas import load_catalog
from service.domain.values import GeoPoint, TimePrecision
from service.store.sqlite import SQLiteEventStore
from tests.support.projections import rebuild

CSV_PATH = Path(__file__).resolve().parents[3] / "shared" / "data" / "toronto_shootings.csv"
EXPECTED_ROWS = 6295
TORONTO = load_catalog("toronto")
LOCAL = ZoneInfo(TORONTO.timezone)
ZONE = "TPS"
NOW = datetime(2024, 8, 1, 12, 0, tzinfo=UTC)  # after the last row (June 2024)
CHUNK = 512
GEOMETRY = re.compile(r"c\((\S+), (\S+)\)")

Counts = Counter[tuple[str, str]]


def read_rows() -> list[dict[str, str]]:
    if not CSV_PATH.is_file():
        pytest.fail(
            f"The Toronto shootings file is missing: expected it at {CSV_PATH} "
            "(/work/shared/data/toronto_shootings.csv in CI; see shared/data/README.md)."
        )
    with CSV_PATH.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def number(text: str) -> int:
    """DEATH and INJURIES: "NA" where the value is zero or missing."""
    return 0 if text == "NA" else int(text)


def command(row: dict[str, str]) -> ReportShooting:
    """The report of one CSV row, in Toronto local time."""
    day = date.fromisoformat(row["OCC_DATE"])
    if row["OCC_HOUR"] == "NA":
        hour, precision = 12, TimePrecision.DAY
    else:
        hour, precision = int(row["OCC_HOUR"]), TimePrecision.HOUR
    occurred = datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL)
    match = GEOMETRY.fullmatch(row["geometry"])
    location = None
    if match:
        lon, lat = float(match[1]), float(match[2])
        if TORONTO.bounds.contains(lat, lon):
            location = GeoPoint(latitude=lat, longitude=lon)
    return ReportShooting(
        occurred_at=occurred,
        occurred_at_precision=precision,
        municipality_code=row["DIVISION"],
        location=location,
        killed=number(row["DEATH"]),
        injured=number(row["INJURIES"]),
        description=row["NEIGHBOURHOOD_158"],
        external_reference=row["EVENT_UNIQUE_ID"],
    )


def periods_of(day: date) -> dict[str, str]:
    """The local day, ISO week, month and year of an OCC_DATE, computed without the projection."""
    iso_year, week, _ = day.isocalendar()
    return {
        "day": day.isoformat(),
        "week": f"{iso_year:04d}-W{week:02d}",
        "month": day.isoformat()[:7],
        "year": str(day.year),
    }


def expected_from_csv(
    rows: list[dict[str, str]],
) -> tuple[dict[str, dict[str, tuple[Counts, Counts, Counts]]], int]:
    """Per area kind and period kind: incidents, killed, injured by (area, period)."""
    tables: dict[str, dict[str, tuple[Counts, Counts, Counts]]] = {
        area_kind: {
            kind: (Counter(), Counter(), Counter()) for kind in ("day", "week", "month", "year")
        }
        for area_kind in ("municipality", "police_zone")
    }
    skipped = 0
    for row in rows:
        division = row["DIVISION"]
        if not TORONTO.has_municipality(division):
            skipped += 1
            continue
        periods = periods_of(date.fromisoformat(row["OCC_DATE"]))
        for area_kind, code in (("municipality", division), ("police_zone", ZONE)):
            for kind, period in periods.items():
                incidents, killed, injured = tables[area_kind][kind]
                incidents[code, period] += 1
                killed[code, period] += number(row["DEATH"])
                injured[code, period] += number(row["INJURIES"])
    return tables, skipped


async def import_rows(registry: Registry, rows: list[dict[str, str]]) -> int:
    """Report every row with a known division, CHUNK at a time, concurrently."""
    reported = 0
    accepted = [row for row in rows if TORONTO.has_municipality(row["DIVISION"])]
    for start in range(0, len(accepted), CHUNK):
        chunk = accepted[start : start + CHUNK]
        results = await asyncio.gather(
            *(
                registry.incidents.report_shooting(
                    command(row),
                    WriteContext(request_id=row["EVENT_UNIQUE_ID"], actor="toronto-import"),
                )
                for row in chunk
            )
        )
        assert all(result.version == 1 and not result.replayed for result in results)
        reported += len(results)
    return reported


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ViewStore, list[dict[str, str]]]]:
    """The whole file reported on a fresh log, and the projection run to its head."""
    rows = read_rows()
    directory = tmp_path_factory.mktemp("toronto")
    registry = Registry(SQLiteEventStore(str(directory / "log.sqlite")), TORONTO, clock=lambda: NOW)
    view: ViewStore | None = None
    try:
        reported = asyncio.run(import_rows(registry, rows))
        head = registry.backend.head()
        assert head == reported
        view = rebuild(
            registry.backend,
            registry.mapper,
            StatisticsProjection(TORONTO),
            directory / "statistics.sqlite",
        )
        assert view.state("statistics").position == head
        yield view, rows
    finally:
        if view is not None:
            view.close()
        registry.close()


def served(view: ViewStore, area_kind: str, period_kind: str) -> tuple[Counts, Counts, Counts]:
    incidents: Counts = Counter()
    killed: Counts = Counter()
    injured: Counts = Counter()
    with view.transaction(write=False) as tx:
        found = query_statistics(tx, area_kind, [], period_kind)
    for row in found:
        key = (row.area_code, row.period)
        assert key not in incidents, f"duplicate row {key}"
        incidents[key], killed[key], injured[key] = row.incidents, row.killed, row.injured
    return incidents, killed, injured


def test_the_file_is_the_published_one():
    rows = read_rows()
    assert len(rows) == EXPECTED_ROWS
    assert len({row["EVENT_UNIQUE_ID"] for row in rows}) == EXPECTED_ROWS
    # Every division of the file is in the catalog ("NSA" is a neighbourhood, not a division).
    assert {row["DIVISION"] for row in rows} == set(TORONTO.municipalities)
    assert expected_from_csv(rows)[1] == 0


def test_every_row_was_reported_once(imported):
    view, rows = imported
    incidents, _, _ = served(view, "police_zone", "year")
    assert sum(incidents.values()) == len(rows) == EXPECTED_ROWS


def test_incidents_killed_and_injured_per_division_and_year_match_the_csv(imported):
    view, rows = imported
    expected, _ = expected_from_csv(rows)
    incidents, killed, injured = served(view, "municipality", "year")
    want_incidents, want_killed, want_injured = expected["municipality"]["year"]
    assert incidents == want_incidents
    assert killed == want_killed
    assert injured == want_injured
    # 17 divisions over 2004-2024, and the grand totals of the file.
    assert {code for code, _ in incidents} == set(TORONTO.municipalities)
    assert {period for _, period in incidents} == {str(y) for y in range(2004, 2025)}
    assert sum(killed.values()) == sum(number(row["DEATH"]) for row in rows)
    assert sum(injured.values()) == sum(number(row["INJURIES"]) for row in rows)


def test_the_police_zone_per_year_is_the_sum_of_its_divisions(imported):
    view, rows = imported
    expected, _ = expected_from_csv(rows)
    zone = served(view, "police_zone", "year")
    divisions = served(view, "municipality", "year")
    for served_counts, division_counts, want in zip(
        zone, divisions, expected["police_zone"]["year"], strict=True
    ):
        assert served_counts == want
        summed: Counts = Counter()
        for (_, year), value in division_counts.items():
            summed[ZONE, year] += value
        assert served_counts == summed
    incidents_by_year = {year: count for (_, year), count in zone[0].items()}
    assert incidents_by_year["2004"] == 191
    assert incidents_by_year["2019"] == 492


@pytest.mark.parametrize("period_kind", ["day", "week", "month"])
@pytest.mark.parametrize("area_kind", ["municipality", "police_zone"])
def test_local_days_weeks_and_months_match_the_csv(imported, area_kind, period_kind):
    # OCC_DATE is the local date: late-evening shootings (UTC the next day) stay on it.
    view, rows = imported
    expected, _ = expected_from_csv(rows)
    assert served(view, area_kind, period_kind) == expected[area_kind][period_kind]
