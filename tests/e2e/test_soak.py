"""Soak: `python -m service` under a bounded mixed load for 75 s does not grow.

Writers, readers, stream churners and long-lived streams (the package tests/support/soak)
drive the real server process on SQLite and on PostgreSQL; its RSS, threads, open fds and
PostgreSQL sessions are sampled every 0.5 s and judged after 15 s of warm-up
(tests/support/soak/judgement.py). Every call must be answered OK (or with the code its
deliberately bad request expects), every acknowledged write must be in the log, and the
long-lived subscribers must reach the head. The long soak is `make soak`
(benchmarks/soak.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.store.postgres import PostgresSettings
from tests.support.postgres import fresh_schema
from tests.support.soak import SoakReport, SoakSettings, run_soak

LOAD_SECONDS = 75.0


def soak(store: str, workdir: Path, postgres: PostgresSettings | None = None) -> SoakReport:
    report = run_soak(
        SoakSettings(store=store, seconds=LOAD_SECONDS, workdir=workdir, postgres=postgres)
    )
    print(report.describe())  # noqa: T201 - shown by pytest with the failure (or with -s)
    return report


def check(report: SoakReport) -> None:
    assert not report.problems, report.describe()
    assert not report.verdict.grew, report.describe()
    assert report.acknowledged > 500, report.describe()
    assert report.head >= report.acknowledged, report.describe()
    assert report.calls_per_second()["ReportShooting"] > 1.0, report.describe()


@pytest.mark.timeout(300)
def test_soak_on_sqlite_shows_no_growth(tmp_path):
    check(soak("sqlite", tmp_path))


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_soak_on_postgresql_shows_no_growth(tmp_path, postgres):
    with fresh_schema(postgres) as pg:
        check(soak("postgres", tmp_path, pg))
