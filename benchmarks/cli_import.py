"""CLI import benchmark: `incidents import` of a 100,000-event export, against a raw insert.

Run as `.venv/bin/python benchmarks/cli_import.py [--events 100000] [--batch 2000]`
(`make bench-cli-import`). Steps:

1. Build a log of `--events` realistic events (benchmarks/logbuild.py: gangs, shootings with
   weapons, sources and a description, casualty revisions, attributions) in a fresh SQLite
   file, start the registry on it and export it with `incidents export` (the console script,
   as an operator runs it) to a JSONL file.
2. Raw baseline, in this process: plain `sqlite3` `executemany` of the same rows, read from
   that file (stream id, version, topic, state), into a fresh file with a table of the same
   shape as the registry's `stored_events` (WAL, `synchronous=FULL`, like the registry), one
   transaction per `--batch` rows.
3. For each server set-up — the default one (`make run`: the read models are built inside
   the server while it imports) and the production one (`INCIDENTS_PROJECTIONS_IN_PROCESS=
   false`: `python -m projections` workers, not started here, catch up afterwards) — start a
   fresh registry and run `incidents --json import FILE --batch-size --batch`. The rate is
   the one the CLI prints (events per second between its first and last batch); the wall
   time includes starting the command. The head must then be N. Importing the file again
   must skip every event and write nothing.
4. The server's own ceiling: the same events as pre-built ImportEventsRequests sent from a
   bare gRPC stub, one call per `--batch`, into a fresh production server: what the CLI
   would reach if reading and converting the file cost nothing.
5. Print a table with each rate's ratio to the raw insert, PASS/MISS against the aim of
   20,000 events/s, and write everything as JSON to `--output` (default
   benchmarks/results/cli_import.json).

Exit status: 0 on success, 1 when an import wrote something else than expected, 2 when a server
failed to start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2_grpc
from logbuild import BuildStats, build_log
from servers import ROOT, ServerProcess, ServerStartError, free_ports, start_registry, wait_serving

from service.domain.events import TOPICS_BY_EVENT_TYPE

RESULTS_DIR = ROOT / "benchmarks" / "results"
INCIDENTS = Path(sys.executable).with_name("incidents")
DOMAIN_EVENTS = 20_000
"""Events built through the domain; the rest of the log repeats them under new ids (faster)."""
AIM = 20_000
PRODUCTION = "production server (read models in workers)"
SETUPS: dict[str, dict[str, str]] = {
    "default server (read models in process)": {},
    PRODUCTION: {"INCIDENTS_PROJECTIONS_IN_PROCESS": "false"},
}


class CheckError(RuntimeError):
    """An import wrote something else than the events it was given."""


@dataclass
class Rate:
    """One measured pass."""

    name: str
    events: int
    seconds: float
    wall_seconds: float

    @property
    def events_per_s(self) -> float:
        """Events per second."""
        return self.events / self.seconds


def start(workdir: Path, name: str, sqlite_path: Path, **env: str) -> ServerProcess:
    """Start the registry on `sqlite_path` at a free port and wait until it serves."""
    server = start_registry(
        workdir, free_ports(1)[0], sqlite_path=sqlite_path, name=name, extra_env=env
    )
    try:
        asyncio.run(wait_serving(server, server.target, service="incidents.v1.EventLogService"))
    except BaseException:
        server.stop()
        raise
    return server


def incidents(target: str, *args: str) -> tuple[dict[str, Any], float]:
    """Run the `incidents` console script with --json; its JSON output and the wall time."""
    started = time.perf_counter()
    finished = subprocess.run(
        [str(INCIDENTS), "--target", target, "--json", "--timeout", "60", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        msg = f"incidents {' '.join(args)} exited {finished.returncode}:\n{finished.stderr}"
        raise CheckError(msg)
    return json.loads(finished.stdout.strip().splitlines()[-1]), wall


def raw_insert(path: Path, export: Path, batch: int) -> Rate:
    """Insert the export's rows with plain sqlite3, one executemany and transaction per batch."""
    rows = []
    with export.open(encoding="utf-8") as handle:
        for line in handle:
            e = json.loads(line)
            rows.append(
                (
                    e["stream_id"].replace("-", ""),
                    e["stream_version"],
                    TOPICS_BY_EVENT_TYPE[e["event_type"]],
                    e["state_json"].encode(),
                )
            )
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(
            "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        started = time.perf_counter()
        for offset in range(0, len(rows), batch):
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO stored_events VALUES (?,?,?,?)", rows[offset : offset + batch]
            )
            connection.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    return Rate("raw sqlite3 executemany", len(rows), seconds, seconds)


def stub_import(workdir: Path, export: Path, batch: int) -> Rate:
    """Send the export as pre-built ImportEvents requests from a bare stub (no CLI)."""
    events = []
    with export.open(encoding="utf-8") as handle:
        for line in handle:
            e = json.loads(line)
            message = pb.ExportedEvent(
                position=e["position"],
                stream_id=e["stream_id"],
                stream_type=e["stream_type"],
                stream_version=e["stream_version"],
                event_type=e["event_type"],
                tags=e["tags"],
                state_json=e["state_json"],
            )
            message.recorded_at.FromDatetime(datetime.fromisoformat(e["recorded_at"]))
            events.append(message)
    requests = [
        pb.ImportEventsRequest(events=events[offset : offset + batch])
        for offset in range(0, len(events), batch)
    ]
    target = start(workdir, "stub", workdir / "stub.sqlite", **SETUPS[PRODUCTION])
    try:
        with grpc.insecure_channel(target.target) as channel:
            log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
            started = time.perf_counter()
            imported = sum(log.ImportEvents(r, timeout=120).imported for r in requests)
            seconds = time.perf_counter() - started
    finally:
        target.stop()
    if imported != len(events):
        msg = f"the stub imported {imported} of {len(events)} events"
        raise CheckError(msg)
    return Rate("bare gRPC stub, pre-built requests, production server", imported, seconds, seconds)


def cli_import(
    workdir: Path, name: str, export: Path, events: int, *, batch: int, env: dict[str, str]
) -> tuple[Rate, Rate]:
    """Import the export into a fresh registry with the CLI, then again (all skipped)."""
    slug = "default" if not env else "workers"
    target = start(workdir, slug, workdir / f"{slug}.sqlite", **env)
    try:
        first, wall = incidents(target.target, "import", str(export), "--batch-size", str(batch))
        if first["imported"] != events or first["skipped"] != 0:
            msg = f"{name}: imported {first['imported']}, skipped {first['skipped']} of {events}"
            raise CheckError(msg)
        # The default server's waves projection appends WaveDetected events meanwhile.
        head, _ = incidents(target.target, "verify")
        if head["last_position"] < events or not head["passed"]:
            msg = f"{name}: after the import the log fails verify: {head}"
            raise CheckError(msg)
        again, wall_again = incidents(
            target.target, "import", str(export), "--batch-size", str(batch)
        )
        if again["imported"] != 0 or again["skipped"] != events:
            msg = f"{name}: importing again imported {again['imported']} events"
            raise CheckError(msg)
    finally:
        target.stop()
    return (
        Rate(f"CLI import, {name}", events, first["seconds"], wall),
        Rate("  again (every event skipped)", events, again["seconds"], wall_again),
    )


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Build, export, measure; return the results document."""
    print(f"building a log of {args.events:,} events ...", flush=True)
    stats: BuildStats = build_log(
        workdir / "source.sqlite", args.events, args.seed, domain_events=DOMAIN_EVENTS
    )
    export = workdir / "export.jsonl"
    # Without read models in it the source detects no waves: its log stays as built.
    source = start(
        workdir, "source", workdir / "source.sqlite", INCIDENTS_PROJECTIONS_IN_PROCESS="false"
    )
    try:
        exported, wall = incidents(source.target, "export", str(export), "--batch-size", "2000")
    finally:
        source.stop()
    events = exported["exported"]  # the builder writes whole writes: a few more than --events
    if events != stats.events or exported["last_position"] != events:
        msg = f"the export wrote {events} events up to {exported['last_position']}"
        raise CheckError(msg)
    export_rate = Rate("CLI export", events, exported["seconds"], wall)
    size_mb = export.stat().st_size / 1e6
    print(f"  exported {events:,} events ({size_mb:.0f} MB): {export_rate.events_per_s:,.0f}/s")

    raw = raw_insert(workdir / "raw.sqlite", export, args.batch)
    print(f"  raw insert: {raw.events_per_s:,.0f} rows/s", flush=True)
    rows = [export_rate, raw]
    for name, env in SETUPS.items():
        imported, again = cli_import(workdir, name, export, events, batch=args.batch, env=env)
        print(f"  {imported.name}: {imported.events_per_s:,.0f} events/s", flush=True)
        rows += [imported, again]
    stub = stub_import(workdir, export, args.batch)
    print(f"  {stub.name}: {stub.events_per_s:,.0f} events/s", flush=True)
    rows.append(stub)

    print()
    header = f"{'pass':<56}{'events':>9}{'seconds':>9}{'wall s':>8}{'events/s':>10}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for rate in rows:
        shown = f"{rate.events_per_s / raw.events_per_s:.2f}x"
        print(
            f"{rate.name:<56}{rate.events:>9,}{rate.seconds:>9.2f}{rate.wall_seconds:>8.2f}"
            f"{rate.events_per_s:>10,.0f}{shown:>7}"
        )
    verdicts = []
    for rate in rows:
        if rate.name.startswith("CLI import"):
            verdict = "PASS" if rate.events_per_s >= args.aim else "MISS"
            verdicts.append(verdict)
            print(
                f"\n  {verdict}  {rate.name}: aim ≥ {args.aim:,} events/s into SQLite "
                f"(measured {rate.events_per_s:,.0f}; "
                f"{rate.events_per_s / raw.events_per_s:.2f}x the raw insert)"
            )
    return {
        "benchmark": "cli_import",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "log": asdict(stats),
        "export_mb": round(size_mb, 1),
        "batch": args.batch,
        "aim_events_per_s": args.aim,
        "passes": [{**asdict(rate), "events_per_s": round(rate.events_per_s)} for rate in rows],
        "verdicts": verdicts,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="events per ImportEvents call")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--aim", type=int, default=AIM)
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "cli_import.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cli-import-") as tmp:
        try:
            results = run(args, Path(tmp))
        except ServerStartError as err:
            print(f"a server failed to start: {err}", file=sys.stderr)
            return 2
        except CheckError as err:
            print(f"check failed: {err}", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
