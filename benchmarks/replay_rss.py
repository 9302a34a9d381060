"""Replay memory: peak RSS of the server while a client replays a large log, and of a rebuild.

Run as `.venv/bin/python benchmarks/replay_rss.py [--events 1000000] [--batch 500]
[--rebuild statistics] [--output FILE]` (part of benchmarks/suite.py). Steps:

1. Build a log of `--events` events in a fresh SQLite file with benchmarks/logbuild.py: the
   first 50,000 through the domain, the rest the same histories again under fresh aggregate
   and request ids (same payloads, so the same decoding cost), copied inside SQLite
   (`logbuild.clone_in_sqlite`, about a minute for 1,000,000 events). The build time is
   reported.
2. Against a fresh server each (benchmarks/subscribe_rss.py): Subscribe from the start to
   caught_up (BOTH, 100), and page through the log with ReadAll (limit `--batch`), sampling the
   server process's VmRSS every 20 ms and reading VmHWM at the end.
3. Unless `--rebuild none`: rebuild one projection (`--rebuild`, default statistics) over the
   same log in a child process (`benchmarks/projection_rebuilds.py --only NAME --no-raw`) and
   report that process's peak RSS: the largest VmHWM and VmRSS read from /proc/<pid>/status
   every 20 ms while it runs. (Not `ru_maxrss` from wait4: Linux carries the memory of the
   process that started the child, here the one that built the log, into it.)
4. Write everything as JSON (`--output`, default benchmarks/results/replay_rss.json).

Bound: 300 MB for every peak. Exit status: 0 on success, 1 when a pass received the wrong
events or the rebuild failed, 2 when a server failed to start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servers import ROOT, ServerStartError, write_json
from subscribe_passes import CheckError
from subscribe_rss import RSS_BOUND_MB, rss_benchmark

RESULTS_DIR = ROOT / "benchmarks" / "results"
REBUILDS_SCRIPT = Path(__file__).resolve().with_name("projection_rebuilds.py")
LOG_NAME = "rss.sqlite"  # where rss_benchmark builds its log in the work directory


SAMPLE_SECONDS = 0.02


class RebuildError(RuntimeError):
    """The rebuild child process failed."""


def memory_mb(pid: int) -> float:
    """The larger of a process's VmHWM and VmRSS in MiB (0 once it is gone)."""
    values = [0.0]
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values.append(int(rest.split()[0]) / 1024)  # kB -> MiB
    return max(values)


def rebuild_rss(log: Path, name: str, workdir: Path) -> dict[str, Any]:
    """Rebuild projection `name` over `log` in a child process; return its time and peak RSS."""
    output = workdir / "rebuild.json"
    argv = [
        sys.executable,
        str(REBUILDS_SCRIPT),
        *("--log", str(log), "--only", name, "--no-raw", "--output", str(output)),
    ]
    started = time.perf_counter()
    peak_mb = 0.0
    with (workdir / "rebuild.log").open("wb") as log_file:
        child = subprocess.Popen(argv, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
        while child.poll() is None:
            peak_mb = max(peak_mb, memory_mb(child.pid))
            time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        tail = (workdir / "rebuild.log").read_text(errors="replace")[-2000:]
        msg = f"rebuild of {name} exited with status {child.returncode}:\n{tail}"
        raise RebuildError(msg)
    result = json.loads(output.read_text())["rebuilds"][0]
    return {
        "projection": name,
        "events": result["events"],
        "seconds": result["seconds"],
        "events_per_s": result["events_per_s"],
        "process_seconds": seconds,
        "peak_rss_mb": peak_mb,
        "bound_mb": RSS_BOUND_MB,
        "within_bound": peak_mb <= RSS_BOUND_MB,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Server peak RSS while replaying a large log, and a rebuild's peak RSS."
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="log size (1000000)")
    parser.add_argument("--batch", type=int, default=500, help="ReadAll page size, 1-1000 (500)")
    parser.add_argument(
        "--seed",
        type=int,
        default=20240601,
        help="random seed (the log is built with seed + 1, as subscribe.py --rss-events builds it)",
    )
    parser.add_argument(
        "--rebuild",
        default="statistics",
        help="projection rebuilt in a child process for its RSS, or none (statistics)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "replay_rss.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.batch <= 1000:
        parser.error("--events must be positive, --batch 1-1000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the log, measure the replays and the rebuild, write JSON."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    rebuild: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="incidents-replay-rss-") as tmp:
        workdir = Path(tmp)
        try:
            replay = rss_benchmark(workdir, args.events, args)
            if args.rebuild != "none":
                print(f"rebuilding {args.rebuild} over the same log ...", flush=True)
                rebuild = rebuild_rss(workdir / LOG_NAME, args.rebuild, workdir)
                print(
                    f"  {rebuild['events_per_s']:,.0f} events/s in {rebuild['seconds']:.1f} s; "
                    f"peak RSS {rebuild['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except (CheckError, RebuildError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; server stopped", file=sys.stderr)
            return 130
    total = time.perf_counter() - started
    document = {
        "benchmark": "replay_rss",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(total, 1),
        "events": args.events,
        "bound_mb": RSS_BOUND_MB,
        "build": replay["build"],
        "passes": replay["passes"],
        "rebuild": rebuild,
    }
    write_json(args.output, document)
    print(f"\ntotal {total:.0f} s; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
