"""Statistics projection benchmark: rebuild rate against a raw decode, and live lag.

Run as `.venv/bin/python benchmarks/projection.py [--events 100000] [--seconds 10]
[--concurrency 32] [--profile FILE]` (`make bench-projection`). Steps:

1. Build a log of `--events` realistic events directly in a fresh SQLite file in a temporary
   directory with benchmarks/logbuild.py (the log of the Subscribe benchmark).
2. Raw baseline, in this process, the same method as subscribe.py's: page through the whole log
   with `store.read_page(after=..., limit=--batch)` and decode every stored event with
   `mapper.to_domain_event` (also reported: the same paging without decoding).
3. Rebuild: a `ProjectionRunner` with the statistics projection on a fresh view store; call
   `process_page(position)` (one page of up to 500 relevant events, one view transaction)
   until the position reaches the head. The rate is head / seconds (every log event covered,
   relevant or not), compared with the raw decode; target "aim ≥ 0.7 times the raw decode".
   Then check that the incidents of all municipality-by-year rows add up to the
   ShootingReported events built.
4. Live lag (benchmarks/projection_lag.py): in-process Registry + every projection on a fresh
   SQLite store, `--concurrency` coroutines calling `registry.incidents.report_shooting` at full
   speed for `--warmup` + `--seconds`; for every acknowledged write, the time from the ack until
   `runner.position >= position`. Prints appends/s and lag p50/p99/max; target "aim p99 ≤
   100 ms".
5. Write everything as JSON to benchmarks/results/projection.json.

`--profile FILE` additionally runs one more rebuild (on another fresh view) under cProfile,
writes the stats to FILE and prints the functions with the most own time.

Exit status: 0 when every check held (targets may MISS), 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import platform
import pstats
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logbuild import BuildStats, build_log
from projection_lag import LagResult, live_lag
from servers import ROOT, write_json

from projections.runner import ProjectionRunner
from projections.statistics import EVENT_TYPES
from projections.statistics_model import StatisticsProjection, query_statistics
from projections.store import sqlite_store
from service.app.head_watcher import HeadWatcher
from service.areas import load_catalog
from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import registry_mapper

RESULTS_DIR = ROOT / "benchmarks" / "results"
TARGET_RATIO = 0.7
TARGET_P99_MS = 100.0
PROFILE_LINES = 15


class CheckError(RuntimeError):
    """The projection's totals do not match the log."""


@dataclass
class PassResult:
    """One timed pass through the log."""

    mode: str
    events: int
    seconds: float
    events_per_s: float
    pages: int
    ratio: float = 0.0


@dataclass
class RebuildResult(PassResult):
    """The rebuild pass, with what it wrote and the verification."""

    relevant_events: int = 0
    statistics_rows: int = 0
    municipality_year_incidents: int = 0
    expected_incidents: int = 0


def raw_pass(path: Path, page_size: int, *, decode: bool, topics: Sequence[str] = ()) -> PassResult:
    """Page through the whole log in-process, decoding every event when `decode`; with
    `topics`, only the events of those topics (as a projection reads them).

    The same method as subscribe.py's raw baseline (benchmarks/subscribe_passes.py).
    """
    store = SQLiteEventStore(path)
    mapper = registry_mapper()
    to_domain_event = mapper.to_domain_event
    try:
        started = time.perf_counter()
        after = count = pages = 0
        while True:
            page = store.read_page(after=after, limit=page_size, topics=topics)
            notifications = page.notifications
            if not notifications:
                break
            if decode:
                decoded = [(n.id, to_domain_event(n)) for n in notifications]
                assert len(decoded) == len(notifications)
            count += len(notifications)
            pages += 1
            after = notifications[-1].id
        seconds = time.perf_counter() - started
    finally:
        store.close()
    mode = "raw decode" if decode else "raw read"
    return PassResult(mode, count, seconds, count / seconds, pages)


def rebuild_pass(path: Path, view_path: Path, profiler: cProfile.Profile | None) -> RebuildResult:
    """Rebuild the statistics from position 0 to the head on a fresh view; check the totals."""
    backend = SQLiteEventStore(path)
    reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reads")
    watcher = HeadWatcher(backend, reads)  # required by the runner; process_page never waits
    catalog = load_catalog("brussels")
    store = sqlite_store(view_path)
    runner = ProjectionRunner(
        backend, registry_mapper(), store, StatisticsProjection(catalog), watcher
    )
    try:
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        position = pages = 0
        while True:
            position, head = runner.process_page(position)
            pages += 1
            if position >= head:
                break
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        with store.transaction(write=False) as tx:
            rows = query_statistics(tx, "municipality", [], "year")
            all_rows = sum(
                len(query_statistics(tx, area, [], period))
                for area in ("municipality", "police_zone")
                for period in ("day", "week", "month", "year")
            )
    finally:
        asyncio.run(runner.stop())
        store.close()
        watcher.close()
        reads.shutdown(wait=True)
        backend.close()
    return RebuildResult(
        mode="rebuild",
        events=head,
        seconds=seconds,
        events_per_s=head / seconds,
        pages=pages,
        statistics_rows=all_rows,
        municipality_year_incidents=sum(row.incidents for row in rows),
    )


def profile_rebuild(path: Path, workdir: Path, output: Path) -> tuple[float, str]:
    """Rebuild once more under cProfile; return its rate and the top functions by own time."""
    profiler = cProfile.Profile()
    result = rebuild_pass(path, workdir / "profiled-projections.sqlite", profiler)
    output.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(output))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs().sort_stats("tottime").print_stats(PROFILE_LINES)
    return result.events_per_s, text.getvalue()


# ------------------------------------------------------------------------------------ report


def targets_for(raw: PassResult, rebuild: RebuildResult, lag: LagResult) -> list[dict[str, Any]]:
    """Return the two targets with their verdicts."""
    return [
        {
            "name": f"aim ≥ {TARGET_RATIO}× raw decode (rebuild)",  # noqa: RUF001
            "value": round(rebuild.events_per_s / raw.events_per_s, 3),
            "pass": rebuild.events_per_s / raw.events_per_s >= TARGET_RATIO,
        },
        {
            "name": f"aim p99 ≤ {TARGET_P99_MS:.0f} ms (live lag)",
            "value": round(lag.lag_p99_ms, 2),
            "pass": lag.lag_p99_ms <= TARGET_P99_MS,
        },
    ]


def print_rebuild(stats: BuildStats, passes: list[PassResult], rebuild: RebuildResult) -> None:
    """Print the rebuild table and the verification."""
    print(
        f"\nlog: {stats.events:,} events ({stats.incidents:,} incidents, {stats.gangs} gangs; "
        f"{', '.join(f'{k} {v:,}' for k, v in stats.event_types.items())})"
    )
    header = f"{'pass':<12}{'events':>10}{'pages':>7}{'seconds':>9}{'events/s':>11}{'ratio':>8}"
    print()
    print(header)
    print("-" * len(header))
    for p in passes:
        ratio = f"{p.ratio:.2f}×" if p.ratio else "-"  # noqa: RUF001
        print(
            f"{p.mode:<12}{p.events:>10,}{p.pages:>7}{p.seconds:>9.2f}"
            f"{p.events_per_s:>11,.0f}{ratio:>8}"
        )
    print(
        f"\nrebuild covered positions 1..{rebuild.events:,} ({rebuild.relevant_events:,} "
        f"statistics events: {', '.join(EVENT_TYPES)}), "
        f"{rebuild.statistics_rows:,} non-empty statistics rows"
    )
    verdict = "OK" if rebuild.municipality_year_incidents == rebuild.expected_incidents else "FAIL"
    print(
        f"  {verdict}  municipality × year incidents {rebuild.municipality_year_incidents:,} "  # noqa: RUF001
        f"= ShootingReported built {rebuild.expected_incidents:,}"
    )


def print_lag(lag: LagResult) -> None:
    """Print the live-lag results."""
    print(f"\nlive lag, {lag.method}")
    print(
        f"  {lag.concurrency} coroutines, {lag.warmup_seconds:g} s warm-up + {lag.seconds:g} s "
        f"measured: {lag.appends:,} appends, {lag.appends_per_s:,.0f} appends/s "
        f"(write p50 {lag.write_p50_ms:.1f} ms, p99 {lag.write_p99_ms:.1f} ms), "
        f"{lag.errors} errors"
    )
    print(
        f"  lag ack → runner.position: p50 {lag.lag_p50_ms:.1f} ms, p95 {lag.lag_p95_ms:.1f} ms, "
        f"p99 {lag.lag_p99_ms:.1f} ms, "
        f"max {lag.lag_max_ms:.1f} ms (mean {lag.lag_mean_ms:.1f} ms); "
        f"{lag.projection_advances:,} projection advances, "
        f"{lag.events_per_advance:.1f} events each; final catch-up {lag.catch_up_ms:.1f} ms"
    )
    verdict = "OK" if lag.projected_incidents == lag.recorded_total else "FAIL"
    print(
        f"  {verdict}  municipality × year incidents {lag.projected_incidents:,} "  # noqa: RUF001
        f"= ShootingReported recorded {lag.recorded_total:,}"
    )
    if lag.errors:
        print(f"  ERRORS {lag.error_types}; first: {lag.first_error}")


def print_targets(targets: list[dict[str, Any]]) -> None:
    """Print the targets with PASS/MISS."""
    print()
    for target in targets:
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"  {verdict}  {target['name']} (measured {target['value']})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Statistics projection: rebuild rate versus a raw decode, and live lag."
    )
    parser.add_argument("--events", type=int, default=100_000, help="log size (100000)")
    parser.add_argument(
        "--batch", type=int, default=500, help="page size of the raw baseline, 1-1000 (500)"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the log")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="coroutines calling ReportShooting (32)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured live seconds (10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="live warm-up seconds (1)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="cProfile one extra rebuild to this file"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "projection.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.batch <= 1000 or args.concurrency < 1:
        parser.error("--events and --concurrency must be positive, --batch 1-1000")
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the log, measure raw decode, rebuild and live lag; report and write JSON."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    profile_text = ""
    profiled_rate = 0.0
    try:
        with tempfile.TemporaryDirectory(prefix="incidents-projection-bench-") as tmp:
            workdir = Path(tmp)
            path = workdir / "bench.sqlite"
            print(f"building a {args.events:,}-event log in {path} ...", flush=True)
            stats = build_log(path, args.events, args.seed)
            print(
                f"  {stats.events:,} events ({stats.writes:,} writes) in {stats.seconds:.1f} s, "
                f"{stats.file_mb:.0f} MB",
                flush=True,
            )
            raws = [
                raw_pass(path, args.batch, decode=False),
                raw_pass(path, args.batch, decode=True),
            ]
            raw = raws[1]
            print(
                f"  raw read {raws[0].events_per_s:,.0f} events/s, "
                f"raw decode {raw.events_per_s:,.0f} events/s",
                flush=True,
            )
            rebuild = rebuild_pass(path, workdir / "projections.sqlite", None)
            rebuild.expected_incidents = stats.incidents
            rebuild.relevant_events = sum(stats.event_types.get(t, 0) for t in EVENT_TYPES)
            rebuild.ratio = rebuild.events_per_s / raw.events_per_s
            print(
                f"  rebuild {rebuild.events_per_s:,.0f} events/s ({rebuild.ratio:.2f}× raw decode)",  # noqa: RUF001
                flush=True,
            )
            if args.profile is not None:
                profiled_rate, profile_text = profile_rebuild(path, workdir, args.profile)
        print(
            f"live lag: {args.concurrency} coroutines, {args.warmup:g} + {args.seconds:g} s ...",
            flush=True,
        )
        lag = live_lag(args.concurrency, args.warmup, args.seconds, args.seed)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    targets = targets_for(raw, rebuild, lag)
    print_rebuild(stats, [*raws, rebuild], rebuild)
    print_lag(lag)
    print_targets(targets)
    if profile_text:
        print(
            f"\ncProfile of one more rebuild ({profiled_rate:,.0f} events/s under the "
            f"profiler), written to {args.profile}:\n{profile_text.rstrip()}"
        )
    checks = {
        "rebuild_incidents_match": rebuild.municipality_year_incidents
        == rebuild.expected_incidents,
        "live_incidents_match": lag.projected_incidents == lag.recorded_total,
        "live_no_errors": lag.errors == 0,
    }
    total_seconds = time.perf_counter() - started
    document: dict[str, Any] = {
        "benchmark": "projection",
        "projection": "statistics",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(total_seconds, 1),
        "events": args.events,
        "raw_page_size": args.batch,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "build": asdict(stats),
        "raw": [asdict(r) for r in raws],
        "rebuild": asdict(rebuild),
        "live_lag": asdict(lag),
        "checks": checks,
        "targets": targets,
    }
    write_json(args.output, document)
    print(f"\ntotal {total_seconds:.0f} s; results written to {args.output}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
