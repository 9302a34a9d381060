"""Subscribe catch-up benchmark: EventLogService.Subscribe versus an in-process raw decode.

Run as `.venv/bin/python benchmarks/subscribe.py [--events 100000] [--batch 500]
[--rss-events 0]`. Steps:

1. Build a log of `--events` realistic events directly in a fresh SQLite file in a temporary
   directory: Gang and Incident aggregates are created in this process through the domain
   (ShootingReported with weapons, sources and a ~200-character description; later
   CasualtiesRevised and AttributedToGang events of recent incidents), turned into stored
   events by `registry_mapper()` and written by `SQLiteEventStore.append`, one PendingWrite
   (unique request id, fingerprint and tags) per command and ~1000 writes per transaction.
2. Raw baseline, in this process: page through the whole log with
   `store.read_page(after=..., limit=--batch)` and decode every stored event with
   `mapper.to_domain_event` (also reported: the same paging without decoding).
3. Start the real server (`python -m service` on that file, INCIDENTS_LOG_LEVEL=warning, a free
   127.0.0.1 port) and, over one grpc.aio channel from this process, subscribe from the start
   until `caught_up` once for each payload format (TYPED, JSON, BOTH) and max_batch_size
   (100, 500, 1000). Each run must receive exactly N events at contiguous positions 1..N in
   batches no larger than asked, carrying the payload forms asked, and caught_up at N.
4. Print a table (mode, batch, events, seconds, events/s, ratio to the raw decode), the target
   "aim ≥ 0.7 times the raw decode" with PASS/MISS for the best configuration and for the
   default one (BOTH, 100), and write everything as JSON to benchmarks/results/subscribe.json.
5. With `--rss-events M` (default 0: off, building 1,000,000 events takes minutes), build a
   second log of M events, then against a fresh server each: subscribe through it from the
   start to caught_up (BOTH, 100), and page through it with ReadAll (limit `--batch`), while
   sampling the SERVER process's VmRSS (every 20 ms) and VmHWM from /proc/<pid>/status;
   report the peaks in MB against the 300 MB bound.

`--py-spy FILE` additionally records the server with `py-spy record --gil -f raw` during one
extra (BOTH, 100) subscription, for a profile of where the time goes.

The log is built by logbuild.py, the passes are in subscribe_passes.py, the RSS runs in
subscribe_rss.py, and the server process is managed by servers.py (all in benchmarks/).

Exit status: 0 on success, 1 when a run received the wrong events, 2 when the server failed to
start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from logbuild import BuildStats, build_log
from servers import ROOT, ServerProcess, ServerStartError, write_json
from subscribe_passes import (
    CHANNEL_OPTIONS,
    DEFAULT_CONFIG,
    FORMATS,
    SUBSCRIBE_PATH,
    CheckError,
    RunResult,
    raw_pass,
    start_server,
    subscribe_pass,
    wait_ready,
)
from subscribe_rss import RSS_BOUND_MB, rss_benchmark

RESULTS_DIR = ROOT / "benchmarks" / "results"
BATCH_SIZES: tuple[int, ...] = (100, 500, 1000)
TARGET_RATIO = 0.7
WARMUP_EVENTS = 3000


async def subscribe_matrix(
    server: ServerProcess, expected: int, py_spy: Path | None
) -> tuple[list[RunResult], str]:
    """Warm up, then run every (batch, format) subscription, then the optional profile."""
    await wait_ready(server)
    results: list[RunResult] = []
    profile_note = ""
    async with grpc.aio.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        await subscribe_pass(
            channel, "BOTH", 100, expected, stop_after=min(WARMUP_EVENTS, expected)
        )
        for batch in BATCH_SIZES:
            for mode in FORMATS:
                result = await subscribe_pass(channel, mode, batch, expected)
                print(
                    f"  Subscribe {mode:<5} batch {batch:>4}: {result.events_per_s:9,.0f} events/s"
                    f" ({result.seconds:.2f} s, {result.messages} messages, "
                    f"{result.megabytes:.1f} MB, largest {result.max_message_kb:.0f} kB)",
                    flush=True,
                )
                results.append(result)
        if py_spy is not None:
            profile_note = await profiled_pass(channel, server, expected, py_spy)
    return results, profile_note


async def profiled_pass(
    channel: grpc.aio.Channel, server: ServerProcess, expected: int, output: Path
) -> str:
    """Run one (BOTH, 100) subscription while py-spy records the server."""
    py_spy = Path(sys.executable).with_name("py-spy")
    recorder = subprocess.Popen(
        [
            *(str(py_spy), "record", "--gil", "--rate", "200", "--pid", str(server.pid)),
            *("--format", "raw", "--output", str(output), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.sleep(1.0)  # py-spy attaches
        result = await subscribe_pass(channel, *DEFAULT_CONFIG, expected)
    finally:
        recorder.send_signal(signal.SIGINT)
        _, err = recorder.communicate(timeout=60)
    note = (
        f"py-spy profile of a (BOTH, 100) subscription ({result.events_per_s:,.0f} events/s "
        f"under the profiler) written to {output}"
    )
    if recorder.returncode not in (0, -signal.SIGINT):
        note += f"; py-spy exit {recorder.returncode}: {err.decode(errors='replace')[-300:]}"
    return note


# ------------------------------------------------------------------------------------ report


def summarize(raw: RunResult, runs: list[RunResult]) -> list[dict[str, Any]]:
    """Set each run's ratio to the raw decode; return the targets with their verdicts."""
    for run in runs:
        run.ratio = run.events_per_s / raw.events_per_s
    best = max(runs, key=lambda r: r.events_per_s)
    default = next(r for r in runs if (r.mode, r.batch) == DEFAULT_CONFIG)
    name = f"aim ≥ {TARGET_RATIO}× raw decode"  # noqa: RUF001
    return [
        {
            "name": f"{name}, best ({best.mode}, {best.batch})",
            "value": round(best.ratio, 3),
            "pass": best.ratio >= TARGET_RATIO,
        },
        {
            "name": f"{name}, default ({default.mode}, {default.batch})",
            "value": round(default.ratio, 3),
            "pass": default.ratio >= TARGET_RATIO,
        },
    ]


def print_report(
    stats: BuildStats,
    raws: list[RunResult],
    runs: list[RunResult],
    targets: list[dict[str, Any]],
    rss: dict[str, Any] | None,
) -> None:
    """Print the table, the targets and the RSS results."""
    header = f"{'mode':<11}{'batch':>6}{'events':>10}{'seconds':>9}{'events/s':>11}{'ratio':>8}"
    print(
        f"\nlog: {stats.events:,} events ({stats.incidents:,} incidents, {stats.gangs} gangs; "
        f"{', '.join(f'{k} {v:,}' for k, v in stats.event_types.items())}), "
        f"mean stored state {stats.mean_state_bytes:.0f} B"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in [*raws, *runs]:
        ratio = f"{r.ratio:.2f}×" if r.ratio else "-"  # noqa: RUF001
        print(
            f"{r.mode:<11}{r.batch:>6}{r.events:>10,}{r.seconds:>9.2f}"
            f"{r.events_per_s:>11,.0f}{ratio:>8}"
        )
    print()
    for target in targets:
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"  {verdict}  {target['name']} (measured {target['value']})")
    if rss:
        print()
        for p in rss["passes"]:
            verdict = "PASS" if p["within_bound"] else "MISS"
            print(
                f"  {verdict}  server peak RSS ≤ {RSS_BOUND_MB:.0f} MB, {p['mode']} through "
                f"{p['events']:,} events (peak VmRSS {p['peak_rss_mb']:.0f} MB, "
                f"VmHWM {p['hwm_mb']:.0f} MB)"
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Subscribe catch-up throughput versus an in-process read-and-decode."
    )
    parser.add_argument("--events", type=int, default=100_000, help="log size (100000)")
    parser.add_argument(
        "--batch",
        type=int,
        default=500,
        help="page size of the raw baseline read and of the RSS ReadAll loop, 1-1000 (500, "
        "the server's own page size)",
    )
    parser.add_argument(
        "--rss-events",
        type=int,
        default=0,
        help="also build a log this large and measure server RSS through it (0: off)",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the log")
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="record the server with py-spy to this file"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "subscribe.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.rss_events < 0 or not 1 <= args.batch <= 1000:
        parser.error("--events must be positive, --rss-events not negative, --batch 1-1000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the log, measure the baseline and the subscriptions, report; stop the server."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks still stop the server.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    rss: dict[str, Any] | None = None
    profile_note = ""
    with tempfile.TemporaryDirectory(prefix="incidents-subscribe-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "bench.sqlite"
        try:
            print(f"building a {args.events:,}-event log in {path} ...", flush=True)
            stats = build_log(path, args.events, args.seed)
            print(
                f"  {stats.events:,} events ({stats.writes:,} writes) in {stats.seconds:.1f} s "
                f"({stats.events_per_s:,.0f} events/s), {stats.file_mb:.0f} MB",
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
            server = start_server(path, workdir, "server")
            print(f"server {server.target} pid {server.pid}", flush=True)
            try:
                runs, profile_note = asyncio.run(subscribe_matrix(server, args.events, args.py_spy))
            finally:
                server.stop()
            if args.rss_events:
                rss = rss_benchmark(workdir, args.rss_events, args)
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CheckError as err:
            print(f"error: wrong events received: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; server stopped", file=sys.stderr)
            return 130
    targets = summarize(raw, runs)
    print_report(stats, raws, runs, targets, rss)
    if profile_note:
        print(f"\n{profile_note}")
    total_seconds = time.perf_counter() - started
    document: dict[str, Any] = {
        "benchmark": "subscribe",
        "method": SUBSCRIBE_PATH,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(total_seconds, 1),
        "events": args.events,
        "raw_page_size": args.batch,
        "server_log_level": "warning",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpc": grpc.__version__,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "build": asdict(stats),
        "raw": [asdict(r) for r in raws],
        "results": [asdict(r) for r in runs],
        "targets": targets,
        "rss": rss,
    }
    write_json(args.output, document)
    print(f"\ntotal {total_seconds:.0f} s; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
