"""Rebuild rate of every projection over one log, next to the raw decode rate.

Run as `.venv/bin/python benchmarks/projection_rebuilds.py [--events 100000] [--seed N]
[--only incidents,statistics] [--repeat 1] [--page-size 500] [--profile NAME:FILE]
[--log FILE] [--no-raw] [--output FILE]`. Steps:

1. Build a log of `--events` realistic events once, in a fresh SQLite file in a temporary
   directory (or at `--log`, kept and reused when it exists), with benchmarks/logbuild.py
   (the log of the Subscribe and projection benchmarks).
2. Raw decode (benchmarks/projection.py's `raw_pass`): page through the whole log and decode
   every stored event with `mapper.to_domain_event` (skipped with `--no-raw`).
3. For every projection the registry runs (`projections.assembly.projection_list`, so a new
   projection is measured without touching this script), rebuild it from position 0 on a
   fresh SQLite view store, page by page with `ProjectionRunner.process_page` (pages of up to
   `--page-size` relevant events, 500 as in the servers, one view transaction each), until
   the head. The rate is head / seconds: every log event covered, relevant or not, like the
   statistics benchmark's. The process's CPU seconds are printed too (less disturbed by a
   busy machine or a slow disk). Its baseline is a raw read and decode of the events it
   reads (the same topics, the same pages), measured right before it: the ratio is that
   pass's time ÷ the rebuild's, so a projection that reads few event types is not flattered
   by a baseline that decodes the whole log.
4. With `--output FILE`, write the raw decode and every rebuild (rate, ratio, CPU) as JSON.

Each projection is built by the assembly on a `Registry` over the log. The waves projection
records the waves it detects in the log (through the registry's writer), so it rebuilds on a
copy of the log, and its rate includes those writes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logbuild import build_log
from projection import PassResult, raw_pass
from servers import write_json

from projections.assembly import projection_list
from projections.base import Projection
from projections.runner import ProjectionRunner
from projections.store import sqlite_store
from service.app.head_watcher import HeadWatcher
from service.app.registry import Registry
from service.areas import load_catalog
from service.domain.events import topics_for
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import RegistryMapper

PROFILE_LINES = 20
PAGE_SIZE = 500
"""Relevant events per page and view transaction: the runners' default (projections/assembly.py)."""
LOG_WRITERS = frozenset({"waves"})
"""Projections that record derived events in the log while they apply: rebuilt on a copy."""
CATALOG = "brussels"
RAW_PAGE_SIZE = 500


@dataclass
class Rebuild:
    """One timed rebuild of one projection."""

    name: str
    events: int
    pages: int
    seconds: float
    cpu_seconds: float
    """CPU time of the process (all threads) during the rebuild: what it costs besides waiting
    for the disk."""

    @property
    def events_per_s(self) -> float:
        """Log events covered per second."""
        return self.events / self.seconds


def open_registry(log: Path) -> Registry:
    """A registry over the SQLite log at `log`, with the default violence-wave rule."""
    return Registry(SQLiteEventStore(log), load_catalog(CATALOG), wave_rule=WaveRule())


def projection_topics(log: Path) -> dict[str, tuple[str, ...]]:
    """Every projection the registry runs, in the assembly's order, with the stored topics
    of the events it reads."""
    registry = open_registry(log)
    try:
        return {
            projection.name: topics_for(projection.event_types, [])
            for projection in projection_list(registry)
        }
    finally:
        registry.close()


def rebuild(
    backend: EventStoreBackend,
    mapper: RegistryMapper,
    projection: Projection,
    view_path: Path,
    *,
    profiler: cProfile.Profile | None = None,
    page_size: int = PAGE_SIZE,
) -> Rebuild:
    """Rebuild `projection` from the start of the log to its head on a fresh view store."""
    store = sqlite_store(view_path)
    reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reads")
    watcher = HeadWatcher(backend, reads)  # required by the runner; process_page never waits
    runner = ProjectionRunner(backend, mapper, store, projection, watcher, page_size=page_size)
    try:
        if profiler is not None:
            profiler.enable()
        started, cpu_started = time.perf_counter(), time.process_time()
        position = pages = 0
        while True:
            position, head = runner.process_page(position)
            pages += 1
            if position >= head:
                break
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        if profiler is not None:
            profiler.disable()
    finally:
        asyncio.run(runner.stop())
        store.close()
        watcher.close()
        reads.shutdown(wait=True)
    return Rebuild(projection.name, head, pages, seconds, cpu_seconds)


def copy_log(log: Path, copy: Path) -> None:
    """Copy the SQLite log with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{log}{suffix}")
        if source.exists():
            shutil.copyfile(source, Path(f"{copy}{suffix}"))


def run_one(
    name: str,
    log: Path,
    view_path: Path,
    *,
    profiler: cProfile.Profile | None = None,
    page_size: int = PAGE_SIZE,
) -> Rebuild:
    """Rebuild the projection called `name`, as the assembly builds it, over `log`.

    A projection that records events in the log rebuilds on a copy, beside the view.
    """
    if name in LOG_WRITERS:
        copy = view_path.with_name(f"log-of-{view_path.stem}.sqlite")
        copy_log(log, copy)
        log = copy
    registry = open_registry(log)
    try:
        projection = next(p for p in projection_list(registry) if p.name == name)
        return rebuild(
            registry.backend,
            registry.mapper,
            projection,
            view_path,
            profiler=profiler,
            page_size=page_size,
        )
    finally:
        registry.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000, help="log size (100000)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the log")
    parser.add_argument(
        "--only", default="", help="comma-separated projections (default: every projection)"
    )
    parser.add_argument(
        "--log", type=Path, default=None, help="keep the log in this file, reuse it if there"
    )
    parser.add_argument(
        "--page-size", type=int, default=PAGE_SIZE, help=f"events per page ({PAGE_SIZE})"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rebuilds per projection (1)")
    parser.add_argument(
        "--profile", default=None, metavar="NAME:FILE", help="cProfile one more rebuild of NAME"
    )
    parser.add_argument(
        "--no-raw", action="store_true", help="skip the raw decode pass (ratios are then 0)"
    )
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    if args.events < 1 or args.repeat < 1 or not 1 <= args.page_size <= 10_000:
        parser.error("positive counts only, --page-size 1-10000")
    return args


def print_raw(label: str, raw: PassResult, *, log_events: int) -> None:
    """Print a raw decode's line: its rate counts every log event, like a rebuild's."""
    rate = log_events / raw.seconds
    print(
        f"{label[:17]:<18}{raw.events:>10,}{raw.pages:>7}{raw.seconds:>9.2f}{'':>8}"
        f"{rate:>11,.0f}{'1.00':>8}",
        flush=True,
    )


def print_row(name: str, result: Rebuild, raw: PassResult | None) -> None:
    """Print one rebuild's line of the table, its ratio to `raw` (the same events decoded)."""
    ratio = raw.seconds / result.seconds if raw else 0.0
    print(
        f"{name:<18}{result.events:>10,}{result.pages:>7}{result.seconds:>9.2f}"
        f"{result.cpu_seconds:>8.2f}{result.events_per_s:>11,.0f}{ratio:>8.2f}",
        flush=True,
    )


def document(
    args: argparse.Namespace,
    raw: PassResult | None,
    same_raw: dict[str, PassResult],
    results: list[Rebuild],
    build: Any,
) -> dict[str, Any]:
    """The results as a JSON document: the raw decode of the whole log, and every rebuild
    with the raw decode of the events it reads and its ratio to it (the time to read and
    decode them ÷ the rebuild's time), and its ratio to the whole log's raw decode."""
    raw_rate = raw.events_per_s if raw else 0.0
    rebuilds = []
    for r in results:
        same = same_raw.get(r.name)
        rebuilds.append(
            {
                **asdict(r),
                "events_per_s": r.events_per_s,
                "raw_same_events": asdict(same) if same else None,
                "raw_same_events_per_s": r.events / same.seconds if same else 0.0,
                "ratio": same.seconds / r.seconds if same else 0.0,
                "ratio_to_whole_log": r.events_per_s / raw_rate if raw_rate else 0.0,
            }
        )
    return {
        "benchmark": "projection_rebuilds",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": args.events,
        "page_size": args.page_size,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "build": build,
        "raw": asdict(raw) if raw else None,
        "rebuilds": rebuilds,
    }


def main(argv: list[str] | None = None) -> int:
    """Build the log, measure the raw decode, rebuild every projection; print events/s."""
    args = parse_args(argv)
    results: list[Rebuild] = []
    same_raw: dict[str, PassResult] = {}
    build: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="projection-rebuilds-") as tmp:
        workdir = Path(tmp)
        log = args.log or workdir / "log.sqlite"
        if not log.exists():
            print(f"building a {args.events:,}-event log ...", flush=True)
            stats = build_log(log, args.events, args.seed)
            build = asdict(stats)
            print(f"  {', '.join(f'{k} {v:,}' for k, v in stats.event_types.items())}", flush=True)
        topics = projection_topics(log)
        every = list(topics)
        unknown = sorted(set(args.only) - set(every))
        if unknown:
            print(f"error: unknown projections {unknown}; there are {every}", file=sys.stderr)
            return 2
        names = args.only or every
        raw = None if args.no_raw else raw_pass(log, RAW_PAGE_SIZE, decode=True)
        header = (
            f"{'pass':<18}{'events':>10}{'pages':>7}{'seconds':>9}{'cpu s':>8}{'events/s':>11}"
            f"{'× raw':>8}"  # noqa: RUF001
        )
        print(f"\n{header}\n{'-' * len(header)}")
        if raw is not None:
            print_raw("raw decode", raw, log_events=raw.events)
        for name in names:
            same = None
            if not args.no_raw:
                same = raw_pass(log, RAW_PAGE_SIZE, decode=True, topics=topics[name])
                same_raw[name] = same
                print_raw(f"raw, {name}'s", same, log_events=raw.events if raw else same.events)
            for attempt in range(args.repeat):
                view = workdir / f"{name}-{attempt}.sqlite"
                result = run_one(name, log, view, page_size=args.page_size)
                print_row(name, result, same)
                results.append(result)
        if args.profile:
            name, _, output = args.profile.partition(":")
            profiler = cProfile.Profile()
            view = workdir / f"{name}-profiled.sqlite"
            result = run_one(name, log, view, profiler=profiler, page_size=args.page_size)
            if output:
                profiler.dump_stats(output)
            print(f"\ncProfile of one more {name} rebuild ({result.events_per_s:,.0f} events/s):")
            pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(PROFILE_LINES)
    if args.output is not None:
        write_json(args.output, document(args, raw, same_raw, results, build))
        print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
