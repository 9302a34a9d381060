"""The long soak: the server under a bounded mixed load for minutes or hours, checked for growth.

    python benchmarks/soak.py --seconds 1800 --store sqlite --clients 3

starts `python -m service` (SQLite in a temporary directory, or PostgreSQL in a fresh schema
of the server named by INCIDENTS_POSTGRES_HOST/PORT/DB/USER/PASSWORD, default
127.0.0.1:5432 user postgres), drives it with the load of the package `tests/support/soak`
(writers, readers, stream churners, long-lived streams) and prints the server's RSS, threads,
open fds and PostgreSQL sessions once a minute, then the calls by method and the verdict of
`tests/support/soak/judgement.judge`. The exit status is 1 when anything grew or any call
failed unexpectedly, 0 otherwise. The CI runs the same load for about a minute per store
(tests/e2e/test_soak.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the driver lives in tests/support, shared with the CI test

from service.config import Settings  # noqa: E402
from tests.support.postgres import fresh_schema  # noqa: E402
from tests.support.soak import (  # noqa: E402
    SAMPLE_HEADER,
    Limits,
    Sample,
    SoakReport,
    SoakSettings,
    run_soak,
    sample_row,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="load duration (1800)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--clients", type=int, default=3, help="writers (3); readers and churners: 2"
    )
    parser.add_argument(
        "--pace", type=float, default=0.02, help="pause between a client's calls (s)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds not judged (default: a third of --seconds, at least 60)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="sampling interval (s)")
    parser.add_argument("--report-every", type=float, default=60.0, help="table row interval (s)")
    return parser.parse_args(argv)


def warmup_for(seconds: float, asked: float | None) -> float:
    """The seconds not judged: as asked, else a third of the run (at least 60 s).

    On SQLite the server's resident memory grows while SQLite's page caches fill (2 MiB per
    connection by default, and the server holds about 20 connections to its two files) as the
    log grows under the load; Python's own heap stays flat (tracemalloc: about 1 MB over five
    minutes of load while RSS rose 9 MB). Judging from the first minute on would count the
    caches filling as growth; a third of the run lets them fill before the baseline.
    """
    return asked if asked is not None else max(60.0, seconds / 3)


class MinuteTable:
    """Prints one sample per `every` seconds as it is taken."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.next_row = 0.0

    def __call__(self, sample: Sample) -> None:
        """Print `sample` when a row is due."""
        if sample.t >= self.next_row:
            print(sample_row(sample), flush=True)
            self.next_row += self.every


def soak(args: argparse.Namespace, workdir: Path) -> SoakReport:
    """Run the soak the command line asks for."""
    settings = SoakSettings(
        store=args.store,
        seconds=args.seconds,
        workdir=workdir,
        writers=args.clients,
        pace=args.pace,
        sample_interval=args.interval,
        limits=Limits(warmup_seconds=warmup_for(args.seconds, args.warmup)),
    )
    table = MinuteTable(args.report_every)
    print(SAMPLE_HEADER, flush=True)
    if args.store == "sqlite":
        return run_soak(settings, table)
    # The server the registry itself would use: INCIDENTS_POSTGRES_*, as the service reads them.
    with fresh_schema(Settings.from_env().postgres) as pg:
        return run_soak(dataclasses.replace(settings, postgres=pg), table)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; exit 1 when something grew or failed."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM unwinds like Ctrl-C, so the run's `finally` still stops the server it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
            report = soak(args, Path(workdir))
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        return 130
    print(report.describe())
    print(f"wall time {time.monotonic() - started:.0f} s")
    print("PASS" if report.passed else "FAIL")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
