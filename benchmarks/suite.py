"""The whole benchmark suite in one command, with a report in Markdown, JSON and a PNG plot.

Run as `.venv/bin/python benchmarks/suite.py [--quick] [--only PART,...]` (`make bench-all`).
Each part is one of the existing benchmark scripts, run in sequence as its own process (its
own memory, its own servers) writing its JSON into the run directory
(benchmarks/results/<UTC timestamp>/, ignored by git), its output shown and kept in
<part>.log there:

* append: benchmarks/append.py — ReportShooting at 1, 8 and 32 in flight on sqlite:1,
  sqlite:2, postgres:1 and postgres:2 against a bare gRPC echo server;
* import_events: benchmarks/import_events.py — ImportEvents against a raw batched insert;
* cli_import: benchmarks/cli_import.py — `incidents import` against a raw batched insert;
* subscribe: benchmarks/subscribe.py — Subscribe catch-up against a raw read-and-decode;
* projection: benchmarks/projection.py — statistics rebuild (totals checked) and live lag;
* projection_rebuilds: benchmarks/projection_rebuilds.py — every projection's rebuild
  against a raw read-and-decode;
* replay_rss: benchmarks/replay_rss.py — server peak RSS while Subscribe and ReadAll replay a
  1,000,000-event log, and a statistics rebuild's peak RSS.

Then it writes benchmarks/report/REPORT.md, report.json (every part's document, the machine,
the targets with met/missed) and throughput_latency.png (`--report-dir` to write elsewhere).
The "What limits it" text of missed targets comes from benchmarks/limits.md.

`--quick` runs every part at small sizes and short windows (a smoke run of a few minutes);
the default (full) sizes take about 20-30 minutes on 2 cores. `--report-only RUN_DIR` renders
the report again from a run directory's JSON without measuring anything.

Exit status: 0 when every part ran (targets may be missed), 1 when a part failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psycopg
from servers import ROOT, postgres_conninfo, write_json
from suite_report import evaluate, load_limits, render_markdown, render_plot

BENCHMARKS = ROOT / "benchmarks"
RESULTS_DIR = BENCHMARKS / "results"
REPORT_DIR = BENCHMARKS / "report"
LIMITS = BENCHMARKS / "limits.md"
PLOT_NAME = "throughput_latency.png"


@dataclass(frozen=True)
class Part:
    """One benchmark script and its arguments for the full and the quick run."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]

    def argv(self, output: Path, *, quick: bool) -> list[str]:
        """The command line of this part, writing its JSON to `output`."""
        extra = self.quick if quick else self.full
        return [sys.executable, str(BENCHMARKS / self.script), *extra, "--output", str(output)]


PARTS: tuple[Part, ...] = (
    Part("append", "append.py", (), ("--seconds", "1", "--warmup", "0.5")),
    Part(
        "import_events",
        "import_events.py",
        ("--events", "100000"),
        ("--events", "5000", "--reports", "1000"),
    ),
    Part("cli_import", "cli_import.py", ("--events", "100000"), ("--events", "3000")),
    Part("subscribe", "subscribe.py", ("--events", "100000"), ("--events", "3000")),
    Part(
        "projection",
        "projection.py",
        ("--events", "100000", "--seconds", "10"),
        ("--events", "3000", "--seconds", "2"),
    ),
    Part(
        "projection_rebuilds",
        "projection_rebuilds.py",
        ("--events", "100000"),
        ("--events", "3000"),
    ),
    Part("replay_rss", "replay_rss.py", ("--events", "1000000"), ("--events", "10000")),
)


# ------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (empty when unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return ""


def memory_gb() -> float:
    """Total memory in GB from /proc/meminfo (0 when unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def postgres_version() -> str:
    """The version of the PostgreSQL server the benchmarks use (INCIDENTS_POSTGRES_*)."""
    conninfo = postgres_conninfo()
    try:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as err:
        return f"unavailable ({type(err).__name__})"
    return str(row[0]) if row else "unknown"


def git(*args: str) -> str:
    """Output of a read-only git command in the project (empty when it fails)."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def machine_facts() -> dict[str, Any]:
    """What the report says about the machine and the code measured."""
    changed = git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(memory_gb(), 1),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpc": grpc.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_tracked_files_changed": len(changed.splitlines()) if changed else 0,
    }


# --------------------------------------------------------------------------------- running


def run_part(part: Part, run_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Run one part as a child process, echoing and logging its output; return how it went."""
    output = run_dir / f"{part.name}.json"
    argv = part.argv(output, quick=quick)
    shown = shlex.join([Path(argv[1]).relative_to(ROOT).as_posix(), *argv[2:-2]])
    print(f"\n=== {part.name}: {shown}", flush=True)
    started = time.perf_counter()
    with (run_dir / f"{part.name}.log").open("w") as log:
        child = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert child.stdout is not None
        for line in child.stdout:
            print(f"  {line}", end="", flush=True)
            log.write(line)
        status = child.wait()
    seconds = time.perf_counter() - started
    print(f"=== {part.name}: exit {status} after {seconds:.0f} s", flush=True)
    return {
        "name": part.name,
        "command": shown,
        "seconds": round(seconds, 1),
        "exit_status": status,
        "output": str(output.relative_to(ROOT)) if output.is_relative_to(ROOT) else str(output),
    }


def collect(run_dir: Path, names: list[str]) -> dict[str, Any]:
    """The parts' JSON documents found in `run_dir`, by part name."""
    results: dict[str, Any] = {}
    for name in names:
        path = run_dir / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    return results


def write_report(report: dict[str, Any], report_dir: Path) -> None:
    """Write report.json, REPORT.md and the plot into `report_dir`."""
    report_dir.mkdir(parents=True, exist_ok=True)
    write_json(report_dir / "report.json", report)
    render_plot(report["results"].get("append"), report_dir / PLOT_NAME)
    markdown = render_markdown(report, load_limits(LIMITS), PLOT_NAME)
    (report_dir / "REPORT.md").write_text(markdown)


def build_report(
    results: dict[str, Any], machine: dict[str, Any], suite: dict[str, Any]
) -> dict[str, Any]:
    """The report document: the suite's run, the machine, every part's results, the targets."""
    return {
        "suite": suite,
        "machine": machine,
        "targets": [target.as_dict() for target in evaluate(results)],
        "results": results,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    names = [part.name for part in PARTS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--only", default="", help=f"comma-separated parts to run (default all: {','.join(names)})"
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where the parts' JSON and logs go (default benchmarks/results/<UTC timestamp>)",
    )
    parser.add_argument("--report-dir", type=Path, default=REPORT_DIR, help="where the report goes")
    parser.add_argument(
        "--report-only",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="render the report from RUN_DIR's suite.json and part JSON, measuring nothing",
    )
    args = parser.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n] or names
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        parser.error(f"unknown parts {unknown}; the parts are {names}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts, collect their JSON, write the report."""
    args = parse_args(argv)
    if args.report_only is not None:
        suite = json.loads((args.report_only / "suite.json").read_text())
        results = collect(args.report_only, [p["name"] for p in suite["suite"]["parts"]])
        write_report(build_report(results, suite["machine"], suite["suite"]), args.report_dir)
        print(f"report written to {args.report_dir}")
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.run_dir or RESULTS_DIR / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    mode = "quick" if args.quick else "full"
    command = shlex.join(["benchmarks/suite.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"{mode} run of {', '.join(args.only)}; JSON and logs in {run_dir}", flush=True)
    started = time.perf_counter()
    parts = []
    try:
        for part in PARTS:
            if part.name in args.only:
                parts.append(run_part(part, run_dir, quick=args.quick))
    except KeyboardInterrupt:
        print("interrupted; writing the report of the parts that finished", file=sys.stderr)
    machine["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    suite = {
        "mode": mode,
        "command": command,
        "run_dir": str(run_dir),
        "started_at": machine["date"],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "parts": parts,
    }
    write_json(run_dir / "suite.json", {"suite": suite, "machine": machine})
    results = collect(run_dir, [p["name"] for p in parts])
    write_report(build_report(results, machine, suite), args.report_dir)
    print(f"\nsuite took {suite['seconds']:.0f} s; report written to {args.report_dir}")
    failed = [p["name"] for p in parts if p["exit_status"] != 0]
    if failed:
        print(f"parts that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or len(parts) < len(args.only) else 0


if __name__ == "__main__":
    sys.exit(main())
