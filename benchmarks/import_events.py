"""Import benchmark: ImportEvents over gRPC into a fresh SQLite registry, against a raw insert.

Run as `.venv/bin/python benchmarks/import_events.py [--events 100000] [--batch 2000]
[--reports 20000] [--report-batch 1000]` (`make bench-import`). Steps:

1. Build a log of `--events` realistic events (benchmarks/logbuild.py: gangs, shootings with
   weapons, sources and a description, casualty revisions, attributions) in a fresh SQLite
   file, start the registry on it, and export the whole log through EventLogService.
   ExportEvents into memory (the export rate is printed too).
2. Raw baseline, in this process: plain `sqlite3` `executemany` of the same rows (stream id,
   version, topic, state) into a fresh file with a table of the same shape as the registry's
   `stored_events` (WAL, `synchronous=FULL`, like the registry), one transaction per batch —
   measured before the import and again after it; the ratio is to their mean, since the load
   of a shared machine changes within minutes.
3. Start a fresh registry (`INCIDENTS_PROJECTIONS_IN_PROCESS=false`: the read models catch up
   afterwards, as a `python -m projections` worker would) and import the export through
   ImportEvents, one call per `--batch` events, in order, each waiting for the previous one
   (versions must continue their streams). Check that every event was imported and the head
   is N. Then import the whole export again: every event is skipped, nothing is written.
4. The CSV-style path: the log's first `--reports` shootings as ReportShootingRequests
   (historical occurred_at, new request ids) through IncidentService.ReportShootings, one
   call per `--report-batch`, into another fresh registry.
5. Print the rates with the import's ratio to the raw insert measured in the same run, and
   write everything as JSON to benchmarks/results/import_events.json.

Exit status: 0 on success, 1 when an import wrote something else than expected, 2 when a server
failed to start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    common_pb2,
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    incident_pb2,
    incident_service_pb2,
    incident_service_pb2_grpc,
)
from logbuild import BuildStats, build_log
from servers import ROOT, ServerProcess, ServerStartError, free_ports, start_registry, wait_serving

from service.api.enums import SOURCE_KIND, TIME_PRECISION, WEAPON_KIND
from service.api.timestamps import stamp
from service.app.import_checks import decode
from service.domain.events import TOPICS_BY_EVENT_TYPE

pb = event_log_service_pb2
RESULTS_DIR = ROOT / "benchmarks" / "results"
SERVICE = pb.DESCRIPTOR.services_by_name["EventLogService"].full_name
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
CALL_TIMEOUT_S = 120.0
DOMAIN_EVENTS = 20_000
"""Events built through the domain; the rest of the log repeats them under new ids (faster)."""


class CheckError(RuntimeError):
    """An import wrote something else than the events it was given."""


@dataclass
class Rate:
    """One measured pass."""

    name: str
    events: int
    seconds: float
    calls: int

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
        asyncio.run(wait_serving(server, server.target, service=SERVICE))
    except BaseException:
        server.stop()
        raise
    return server


def export_all(server: ServerProcess, batch: int) -> tuple[list[pb.ExportedEvent], Rate]:
    """Export the whole log through ExportEvents."""
    events: list[pb.ExportedEvent] = []
    started = time.perf_counter()
    calls = 0
    with grpc.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        request = pb.ExportEventsRequest(max_batch_size=batch)
        for message in log.ExportEvents(request, timeout=CALL_TIMEOUT_S * 10):
            calls += 1
            if message.HasField("events"):
                events.extend(message.events.events)
            else:
                finished = message.finished
    seconds = time.perf_counter() - started
    if finished.exported != len(events) or [e.position for e in events] != list(
        range(1, len(events) + 1)
    ):
        msg = f"the export sent {len(events)} events, not positions 1..{finished.exported}"
        raise CheckError(msg)
    return events, Rate("ExportEvents", len(events), seconds, calls)


def raw_insert(path: Path, events: list[pb.ExportedEvent], batch: int, name: str) -> Rate:
    """Insert the same rows with plain sqlite3, one executemany and transaction per batch."""
    rows = [
        (
            e.stream_id.replace("-", ""),
            e.stream_version,
            TOPICS_BY_EVENT_TYPE[e.event_type],
            e.state_json.encode(),
        )
        for e in events
    ]
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
    return Rate(name, len(rows), seconds, -(-len(rows) // batch))


def import_all(
    server: ServerProcess, events: list[pb.ExportedEvent], batch: int, name: str
) -> tuple[Rate, Rate, int, int]:
    """Import the events in order, one ImportEvents call per batch; return the rate, the rate
    after the first call (which starts the server's worker processes), and the numbers of
    events imported and skipped."""
    imported = skipped = 0
    requests = [
        pb.ImportEventsRequest(events=events[offset : offset + batch])
        for offset in range(0, len(events), batch)
    ]
    with grpc.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        started = time.perf_counter()
        first_done = started
        for request in requests:
            reply = log.ImportEvents(request, timeout=CALL_TIMEOUT_S)
            imported += reply.imported
            skipped += reply.skipped
            if first_done == started:
                first_done = time.perf_counter()
        seconds = time.perf_counter() - started
        head = log.GetHead(pb.GetHeadRequest(), timeout=CALL_TIMEOUT_S).position
    if imported + skipped != len(events):
        msg = f"{name}: {imported} imported + {skipped} skipped != {len(events)} events"
        raise CheckError(msg)
    if imported and head != len(events):
        msg = f"{name}: the head is {head} after importing {len(events)} events"
        raise CheckError(msg)
    rest = len(events) - len(requests[0].events)
    steady = Rate(f"{name} (calls 2..)", rest, seconds - (first_done - started), len(requests) - 1)
    return Rate(name, len(events), seconds, len(requests)), steady, imported, skipped


def shooting_requests(
    events: list[pb.ExportedEvent], count: int
) -> list[incident_service_pb2.ReportShootingRequest]:
    """The log's first `count` shootings as requests, as a CSV import would send them."""
    requests: list[incident_service_pb2.ReportShootingRequest] = []
    now = datetime.now(UTC)
    run = now.strftime("%H%M%S%f")
    for exported in events:
        if len(requests) == count:
            break
        if exported.event_type != "ShootingReported":
            continue
        e: Any = decode(
            exported.event_type,
            exported.stream_id,
            exported.stream_version,
            exported.state_json.encode(),
        )
        location = (
            common_pb2.GeoPoint(latitude=e.location.latitude, longitude=e.location.longitude)
            if e.location
            else None
        )
        requests.append(
            incident_service_pb2.ReportShootingRequest(
                request_id=f"bench-report-{run}-{len(requests)}",
                occurred_at=stamp(e.occurred_at),
                occurred_at_precision=TIME_PRECISION.proto(e.occurred_at_precision),
                # The log's reports may lie up to ten hours after "now": never in the future.
                reported_at=stamp(min(e.reported_at, now)),
                municipality_code=e.municipality_code,
                address=e.address,
                location=location,
                weapons=[
                    incident_pb2.Weapon(kind=WEAPON_KIND.proto(w.kind), count=w.count)
                    for w in e.weapons
                ],
                assailant_count=e.assailant_count,
                assailants_masked=e.assailants_masked,
                killed=e.killed,
                injured=e.injured,
                drug_nexus=e.drug_nexus,
                description=e.description,
                sources=[
                    incident_pb2.Source(
                        kind=SOURCE_KIND.proto(s.kind),
                        name=s.name,
                        reference=s.reference,
                        retrieved_at=stamp(s.retrieved_at),
                    )
                    for s in e.sources
                ],
                external_reference=e.external_reference,
            )
        )
    return requests


def report_all(
    server: ServerProcess, requests: list[incident_service_pb2.ReportShootingRequest], batch: int
) -> Rate:
    """Report the shootings through ReportShootings, one call per batch."""
    calls = [
        incident_service_pb2.ReportShootingsRequest(requests=requests[offset : offset + batch])
        for offset in range(0, len(requests), batch)
    ]
    written = 0
    with grpc.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
        started = time.perf_counter()
        for call in calls:
            reply = incidents.ReportShootings(
                call, metadata=(("x-actor", "bench-import"),), timeout=CALL_TIMEOUT_S
            )
            written += sum(not r.replayed for r in reply.results)
        seconds = time.perf_counter() - started
    if written != len(requests):
        msg = f"ReportShootings wrote {written} of {len(requests)} shootings"
        raise CheckError(msg)
    return Rate("ReportShootings", len(requests), seconds, len(calls))


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Build, export, measure; return the results document."""
    print(f"building a log of {args.events:,} events ...", flush=True)
    stats: BuildStats = build_log(
        workdir / "source.sqlite", args.events, args.seed, domain_events=DOMAIN_EVENTS
    )
    source = start(workdir, "source", workdir / "source.sqlite")
    try:
        events, exported = export_all(source, args.batch)
    finally:
        source.stop()
    print(f"  exported {exported.events:,} events: {exported.events_per_s:,.0f} events/s")

    load_before = os.getloadavg()[0]
    raw_before = raw_insert(workdir / "raw-before.sqlite", events, args.batch, "raw insert, before")
    print(f"  raw insert: {raw_before.events_per_s:,.0f} rows/s", flush=True)

    env = {"INCIDENTS_PROJECTIONS_IN_PROCESS": "false"}
    target = start(workdir, "target", workdir / "target.sqlite", **env)
    try:
        imported, steady, _, _ = import_all(target, events, args.batch, "ImportEvents")
        print(f"  import: {imported.events_per_s:,.0f} events/s", flush=True)
        again, _, written, skipped = import_all(target, events, args.batch, "ImportEvents again")
        if written or skipped != len(events):
            msg = f"importing again wrote {written} events and skipped {skipped}"
            raise CheckError(msg)
        print(f"  import again (all skipped): {again.events_per_s:,.0f} events/s", flush=True)
    finally:
        target.stop()
    # Measured again right after: on a shared machine the load changes within minutes.
    raw_after = raw_insert(workdir / "raw-after.sqlite", events, args.batch, "raw insert, after")
    raw = Rate(
        "raw insert (mean)",
        raw_before.events + raw_after.events,
        raw_before.seconds + raw_after.seconds,
        raw_before.calls + raw_after.calls,
    )
    print(f"  raw insert again: {raw_after.events_per_s:,.0f} rows/s", flush=True)

    requests = shooting_requests(events, args.reports)
    reports_target = start(workdir, "reports", workdir / "reports.sqlite", **env)
    try:
        reported = report_all(reports_target, requests, args.report_batch)
    finally:
        reports_target.stop()
    print(f"  ReportShootings: {reported.events_per_s:,.0f} shootings/s", flush=True)

    load_after = os.getloadavg()[0]
    ratio = imported.events_per_s / raw.events_per_s
    rows = [exported, raw_before, raw_after, raw, imported, steady, again, reported]
    print()
    header = f"{'pass':<28}{'events':>9}{'calls':>7}{'seconds':>9}{'events/s':>11}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for rate in rows:
        shown = f"{rate.events_per_s / raw.events_per_s:.2f}x"
        print(
            f"{rate.name:<28}{rate.events:>9,}{rate.calls:>7}{rate.seconds:>9.2f}"
            f"{rate.events_per_s:>11,.0f}{shown:>8}"
        )
    verdict = "PASS" if imported.events_per_s >= args.aim else "MISS"
    print(
        f"\n  {verdict}  ImportEvents ≥ {args.aim:,} events/s into SQLite "
        f"(measured {imported.events_per_s:,.0f}; {ratio:.2f}x the raw insert)"
    )
    print(f"  load average (1 min) {load_before:.2f} before, {load_after:.2f} after")
    return {
        "benchmark": "import_events",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "log": asdict(stats),
        "batch": args.batch,
        "report_batch": args.report_batch,
        "passes": [{**asdict(rate), "events_per_s": round(rate.events_per_s)} for rate in rows],
        "import_ratio_to_raw": round(ratio, 3),
        "aim_events_per_s": args.aim,
        "aim_met": imported.events_per_s >= args.aim,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="ImportEvents and ReportShootings rates against a raw sqlite3 insert."
    )
    parser.add_argument("--events", type=int, default=100_000, help="log size (100000)")
    parser.add_argument(
        "--batch", type=int, default=2000, help="events per export message and import (2000)"
    )
    parser.add_argument(
        "--reports", type=int, default=20_000, help="shootings sent through ReportShootings"
    )
    parser.add_argument(
        "--report-batch", type=int, default=1000, help="shootings per ReportShootings (1000)"
    )
    parser.add_argument("--aim", type=int, default=20_000, help="import aim, events/s (20000)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the log")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "import_events.json", help="JSON results"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.batch <= 2000 or not 1 <= args.report_batch <= 1000:
        parser.error("--events positive, --batch 1-2000, --report-batch 1-1000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        try:
            document = run(args, Path(folder))
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CheckError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
