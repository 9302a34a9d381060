"""Rebuild rate of every projection over one log, next to the raw decode rate.

Run as `.venv/bin/python benchmarks/projection_rebuilds.py [--events 100000] [--seed N]
[--only incidents,statistics] [--repeat 1] [--page-size 500] [--profile NAME:FILE]
[--log FILE]`. Steps:

1. Build a log of `--events` realistic events once, in a fresh SQLite file in a temporary
   directory (or at `--log`, kept and reused when it exists), with benchmarks/logbuild.py
   (the log of the Subscribe and projection benchmarks).
2. Raw decode (benchmarks/projection.py's `raw_pass`): page through the whole log and decode
   every stored event with `mapper.to_domain_event`.
3. For every projection (as projections/assembly.py builds them), rebuild it from position 0
   on a fresh SQLite view store, page by page with `ProjectionRunner.process_page` (pages of up
   to `--page-size` relevant events, 500 as in the servers, one view transaction each), until
   the head. The rate is head / seconds: every log event covered, relevant or not, like the
   statistics benchmark's. The process's CPU seconds are printed too (less disturbed by a
   busy machine or a slow disk).

The waves projection records the waves it detects in the log (through the registry's writer),
so it rebuilds on a copy of the log, and its rate includes those writes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from logbuild import build_log
from projection import raw_pass

from projections.assets_model import AssetRecoveryProjection
from projections.base import Projection
from projections.commands_model import CommandsProjection
from projections.incidents_model import IncidentsProjection
from projections.runner import ProjectionRunner
from projections.statistics_model import StatisticsProjection
from projections.store import sqlite_store
from projections.waves_model import WavesProjection, blocking_recorder
from service.app.head_watcher import HeadWatcher
from service.app.registry import Registry
from service.areas import AreaCatalog, load_catalog
from service.domain.wave import WaveRule
from service.store.base import EventStoreBackend
from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import RegistryMapper, registry_mapper

PROJECTIONS = ("statistics", "incidents", "waves", "unified_commands", "asset_recovery")
PROFILE_LINES = 20
PAGE_SIZE = 500
"""Relevant events per page and view transaction: the runners' default (projections/assembly.py)."""

Factory = Callable[[AreaCatalog], Projection]
SIMPLE: dict[str, Factory] = {
    "statistics": StatisticsProjection,
    "incidents": IncidentsProjection,
    "unified_commands": lambda _catalog: CommandsProjection(),
    "asset_recovery": AssetRecoveryProjection,
}


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


def rebuild_simple(
    name: str, log: Path, view_path: Path, *, profiler: cProfile.Profile | None, page_size: int
) -> Rebuild:
    """Rebuild one of the projections that need only the catalog."""
    backend = SQLiteEventStore(log)
    try:
        projection = SIMPLE[name](load_catalog("brussels"))
        return rebuild(
            backend,
            registry_mapper(),
            projection,
            view_path,
            profiler=profiler,
            page_size=page_size,
        )
    finally:
        backend.close()


def rebuild_waves(
    log: Path, view_path: Path, *, profiler: cProfile.Profile | None, page_size: int
) -> Rebuild:
    """Rebuild the waves on a copy of the log, through a registry that records the waves."""
    copy = view_path.with_name(f"log-of-{view_path.stem}.sqlite")  # beside the view, in the workdir
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{log}{suffix}")
        if source.exists():
            shutil.copyfile(source, Path(f"{copy}{suffix}"))
    registry = Registry(SQLiteEventStore(copy), load_catalog("brussels"), wave_rule=WaveRule())
    try:
        projection = WavesProjection(registry.waves.rule, blocking_recorder(registry.waves))
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


def run_one(
    name: str,
    log: Path,
    view_path: Path,
    *,
    profiler: cProfile.Profile | None = None,
    page_size: int = PAGE_SIZE,
) -> Rebuild:
    """Rebuild the projection called `name`."""
    if name == "waves":
        return rebuild_waves(log, view_path, profiler=profiler, page_size=page_size)
    return rebuild_simple(name, log, view_path, profiler=profiler, page_size=page_size)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000, help="log size (100000)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the log")
    parser.add_argument(
        "--only", default=",".join(PROJECTIONS), help="comma-separated projections (all)"
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
    args = parser.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(args.only) - set(PROJECTIONS))
    if unknown or args.events < 1 or args.repeat < 1 or not 1 <= args.page_size <= 10_000:
        parser.error(f"unknown projections {unknown}" if unknown else "positive counts only")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the log, measure the raw decode, rebuild every projection; print events/s."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="projection-rebuilds-") as tmp:
        workdir = Path(tmp)
        log = args.log or workdir / "log.sqlite"
        if not log.exists():
            print(f"building a {args.events:,}-event log ...", flush=True)
            stats = build_log(log, args.events, args.seed)
            print(f"  {', '.join(f'{k} {v:,}' for k, v in stats.event_types.items())}", flush=True)
        raw = raw_pass(log, 500, decode=True)
        header = (
            f"{'pass':<18}{'events':>10}{'pages':>7}{'seconds':>9}{'cpu s':>8}{'events/s':>11}"
            f"{'× raw':>8}"  # noqa: RUF001
        )
        print(f"\n{header}\n{'-' * len(header)}")
        print(f"{'raw decode':<18}{raw.events:>10,}{raw.pages:>7}{raw.seconds:>9.2f}{'':>8}"
              f"{raw.events_per_s:>11,.0f}{'1.00':>8}")  # fmt: skip
        for name in args.only:
            for attempt in range(args.repeat):
                view = workdir / f"{name}-{attempt}.sqlite"
                result = run_one(name, log, view, page_size=args.page_size)
                ratio = result.events_per_s / raw.events_per_s
                print(
                    f"{name:<18}{result.events:>10,}{result.pages:>7}{result.seconds:>9.2f}"
                    f"{result.cpu_seconds:>8.2f}{result.events_per_s:>11,.0f}{ratio:>8.2f}",
                    flush=True,
                )
        if args.profile:
            name, _, output = args.profile.partition(":")
            profiler = cProfile.Profile()
            view = workdir / f"{name}-profiled.sqlite"
            result = run_one(name, log, view, profiler=profiler, page_size=args.page_size)
            if output:
                profiler.dump_stats(output)
            print(f"\ncProfile of one more {name} rebuild ({result.events_per_s:,.0f} events/s):")
            pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(PROFILE_LINES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
