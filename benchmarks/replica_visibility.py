"""Replica visibility: how soon a write acknowledged by one server reaches another's subscribers.

Run as `.venv/bin/python benchmarks/replica_visibility.py [--events 200] [--in-flight 8]`.
Steps:

1. Create a fresh schema in the PostgreSQL database named by INCIDENTS_POSTGRES_HOST, _PORT,
   _USER, _PASSWORD and _DB (the server's own variables; default 127.0.0.1:5432, user
   postgres, database postgres). It is dropped at the end, also after Ctrl-C or SIGTERM.
2. For each poll configuration — `notify only` (INCIDENTS_POLL_INTERVAL_SECONDS=30: within a
   run only the NOTIFY sent with each commit wakes the other server's followers) and `default`
   (its default, 0.1: NOTIFY, plus polling of the head every 0.1 s) — start two registry
   processes (`python -m service`, INCIDENTS_STORE=postgres, that schema) on two free ports,
   A and B, laid out as in production: the projections are not applied in the servers
   (INCIDENTS_PROJECTIONS_IN_PROCESS=false, unless this process's environment says otherwise;
   see below).
3. Open a Subscribe (from the end, every event, the default payload format) on B and wait for
   its caught_up. Send `--warmup` ReportShooting calls to A (not measured), then `--events`
   calls one at a time, then `--events` calls with `--in-flight` outstanding at once. For every
   acknowledged write, its lag is the time from A's reply reaching this process to the event
   reaching this process on B's stream (0 when the stream delivered it first).
4. Print, per configuration and phase, the count, p50, p99 and max lag in ms with PASS/MISS
   against "≤ 100 ms" (for p99 and for every event), and write everything as JSON to
   benchmarks/results/replica_visibility.json.

Both the replies and the stream are read by one asyncio loop in this process, so a lag
includes this process's own scheduling (well under a millisecond when idle). The servers inherit
this process's environment: e.g. INCIDENTS_PROJECTIONS_IN_PROCESS=true measures replicas that
each apply every projection in process (the embedded default), whose work on every commit
competes with delivering it.

Exit status: 0 on success (whatever the verdicts), 1 when a call failed or an acknowledged event
never reached B's stream, 2 when the environment is invalid, PostgreSQL is unreachable or a
server failed to start, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psycopg
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as log_pb
from incident_registry_client.proto.incidents.v1 import incident_service_pb2
from servers import (
    ROOT,
    ServerProcess,
    ServerStartError,
    free_ports,
    shooting_request,
    start_registry,
    wait_serving,
    write_json,
)

from service.config import ConfigError, Settings
from service.store.postgres import PostgresSettings

RESULTS_DIR = ROOT / "benchmarks" / "results"
TARGET_MS = 100.0
NOTIFY_ONLY_POLL_SECONDS = "30"
ARRIVAL_TIMEOUT_S = 30.0
"""How long the events acknowledged in a phase may take to reach B's stream at all."""
CALL_TIMEOUT_S = 30.0
SERVICE = log_pb.DESCRIPTOR.services_by_name["EventLogService"].full_name
SUBSCRIBE_PATH = f"/{SERVICE}/Subscribe"
REPORT_PATH = (
    f"/{incident_service_pb2.DESCRIPTOR.services_by_name['IncidentService'].full_name}"
    "/ReportShooting"
)
CONFIGS: tuple[tuple[str, str], ...] = (
    ("notify only", NOTIFY_ONLY_POLL_SECONDS),
    ("default", str(Settings().poll_interval_seconds)),
)
"""Each configuration's name and INCIDENTS_POLL_INTERVAL_SECONDS."""


class MissingEventsError(RuntimeError):
    """Acknowledged events did not reach the other server's stream in time."""


@dataclass
class PhaseResult:
    """The lags of one phase: writes to A, arrivals on B."""

    config: str
    poll_interval: str
    mode: str
    in_flight: int
    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    before_ack: int
    over_target: int
    other_events: int
    p99_pass: bool
    all_pass: bool
    lags_ms: list[float] = field(default_factory=list)


@dataclass
class Stream:
    """B's subscription, read by a task: arrival time of each position."""

    arrivals: dict[int, float] = field(default_factory=dict)
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None

    async def read(
        self, call: grpc.aio.UnaryStreamCall[log_pb.SubscribeRequest, log_pb.SubscribeResponse]
    ) -> None:
        """Record when each event arrives; stop when the call ends or is cancelled."""
        try:
            # read(), not `async for`: the caller read the first message with read().
            while isinstance(message := await call.read(), log_pb.SubscribeResponse):
                arrived = time.perf_counter()
                if message.WhichOneof("message") != "events":
                    continue
                for envelope in message.events.events:
                    self.arrivals[envelope.position] = arrived
                self.moved.set()
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.error = err
        finally:
            self.moved.set()

    async def wait_for(self, positions: list[int]) -> list[int]:
        """Wait until every position arrived, or ARRIVAL_TIMEOUT_S; return the missing ones."""
        deadline = time.perf_counter() + ARRIVAL_TIMEOUT_S
        while missing := [p for p in positions if p not in self.arrivals]:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self.error is not None:
                return missing
            self.moved.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.moved.wait()
        return []


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of an ascending list; 0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


Report = grpc.aio.UnaryUnaryMultiCallable[
    incident_service_pb2.ReportShootingRequest, incident_service_pb2.ReportShootingResponse
]


async def write(
    report: Report, count: int, in_flight: int, prefix: str
) -> tuple[dict[int, float], float]:
    """Send `count` reports with `in_flight` outstanding; return ack time by position."""
    acks: dict[int, float] = {}
    sequence = iter(range(count))
    started = time.perf_counter()

    async def worker() -> None:
        for index in sequence:
            reply = await report(
                shooting_request(f"{prefix}-{index}"),
                metadata=(("x-actor", "replica-benchmark"),),
                timeout=CALL_TIMEOUT_S,
            )
            acks[reply.result.position] = time.perf_counter()

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return acks, time.perf_counter() - started


def phase_result(
    config: str,
    mode: str,
    acks: dict[int, float],
    stream: Stream,
    *,
    in_flight: int,
    seconds: float,
) -> PhaseResult:
    """The lags of the acknowledged positions, in ms (0 where the stream was first)."""
    raw = [(stream.arrivals[p] - acked) * 1000 for p, acked in acks.items()]
    lags = sorted(max(0.0, lag) for lag in raw)
    p99 = percentile(lags, 99)
    return PhaseResult(
        config=config,
        poll_interval=dict(CONFIGS)[config],
        mode=mode,
        in_flight=in_flight,
        count=len(lags),
        seconds=round(seconds, 3),
        p50_ms=round(percentile(lags, 50), 2),
        p99_ms=round(p99, 2),
        max_ms=round(lags[-1], 2),
        mean_ms=round(sum(lags) / len(lags), 2),
        before_ack=sum(lag < 0 for lag in raw),
        over_target=sum(lag > TARGET_MS for lag in lags),
        # Events among the phase's own on B's stream: e.g. waves a server's projection recorded.
        other_events=sum(min(acks) < p < max(acks) and p not in acks for p in stream.arrivals),
        p99_pass=p99 <= TARGET_MS,
        all_pass=lags[-1] <= TARGET_MS,
        lags_ms=[round(lag, 2) for lag in lags],
    )


async def measure(
    config: str, a: ServerProcess, b: ServerProcess, args: argparse.Namespace
) -> list[PhaseResult]:
    """Subscribe on B, write to A one at a time and then concurrently; return both phases."""
    await asyncio.gather(
        wait_serving(a, a.target, service=SERVICE), wait_serving(b, b.target, service=SERVICE)
    )
    results: list[PhaseResult] = []
    async with (
        grpc.aio.insecure_channel(a.target) as writes,
        grpc.aio.insecure_channel(b.target) as reads,
    ):
        report: Report = writes.unary_unary(
            REPORT_PATH,
            request_serializer=incident_service_pb2.ReportShootingRequest.SerializeToString,
            response_deserializer=incident_service_pb2.ReportShootingResponse.FromString,
        )
        subscribe: grpc.aio.UnaryStreamMultiCallable[
            log_pb.SubscribeRequest, log_pb.SubscribeResponse
        ] = reads.unary_stream(
            SUBSCRIBE_PATH,
            request_serializer=log_pb.SubscribeRequest.SerializeToString,
            response_deserializer=log_pb.SubscribeResponse.FromString,
        )
        call = subscribe(log_pb.SubscribeRequest(from_end=True))
        first = await call.read()
        if not isinstance(first, log_pb.SubscribeResponse) or (
            first.WhichOneof("message") != "caught_up"
        ):
            msg = f"B's subscription did not start with caught_up: {first}"
            raise ServerStartError(msg)
        stream = Stream()
        reader = asyncio.create_task(stream.read(call))
        try:
            run = uuid.uuid4().hex[:8]
            phases = (
                ("warm-up", 1, args.warmup),
                ("one at a time", 1, args.events),
                ("concurrent", args.in_flight, args.events),
            )
            for mode, in_flight, count in phases:
                acks, seconds = await write(report, count, in_flight, f"{mode[:3]}-{run}")
                if missing := await stream.wait_for(sorted(acks)):
                    msg = f"{config}, {mode}: {len(missing)} of {len(acks)} never reached B"
                    raise MissingEventsError(f"{msg} (stream: {stream.error or 'open'})")
                if mode == "warm-up":
                    continue
                result = phase_result(
                    config, mode, acks, stream, in_flight=in_flight, seconds=seconds
                )
                print_phase(result)
                results.append(result)
        finally:
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return results


def print_phase(r: PhaseResult) -> None:
    """One line per phase."""
    print(
        f"  {r.config:<12} {r.mode:<14} {r.count:>6} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
        f"{r.max_ms:>8.1f}  {'PASS' if r.p99_pass else 'MISS'} p99  "
        f"{'PASS' if r.all_pass else 'MISS'} all ({r.over_target} over, "
        f"{r.before_ack} on B before A's reply, {r.other_events} other events)",
        flush=True,
    )


@contextlib.contextmanager
def fresh_schema(pg: PostgresSettings) -> Iterator[str]:
    """Create a schema for the run; drop it on the way out, whatever happened."""
    schema = f"bench_replicas_{uuid.uuid4().hex[:10]}"
    conninfo = psycopg.conninfo.make_conninfo(
        host=pg.host,
        port=pg.port,
        dbname=pg.dbname,
        user=pg.user,
        password=pg.password,
        connect_timeout=5,
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        # A second Ctrl-C must not leave the schema behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            print(f"schema {schema} dropped", flush=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def projections_in_process() -> bool:
    """Do the servers apply the projections? Not unless the environment says so."""
    return os.environ.get("INCIDENTS_PROJECTIONS_IN_PROCESS", "false").lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


@contextlib.contextmanager
def replicas(
    workdir: Path, schema: str, config: str, poll_interval: str
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Start servers A and B on the schema; stop both on the way out."""
    extra = {
        "INCIDENTS_STORE": "postgres",
        "INCIDENTS_POSTGRES_SCHEMA": schema,
        "INCIDENTS_POLL_INTERVAL_SECONDS": poll_interval,
        "INCIDENTS_PROJECTIONS_IN_PROCESS": str(projections_in_process()).lower(),
    }
    started: list[ServerProcess] = []
    tag = config.replace(" ", "-")
    try:
        for name, port in zip(("a", "b"), free_ports(2), strict=True):
            started.append(
                start_registry(
                    workdir,
                    port,
                    extra_env=extra,
                    name=f"{tag}-{name}",
                    label=f"server {name.upper()} ({config})",
                )
            )
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def print_header(args: argparse.Namespace) -> None:
    """The table's header."""
    print(
        f"\nlag from A's reply to B's stream, {args.events} writes per phase, "
        f"target ≤ {TARGET_MS:.0f} ms (ms)"
    )
    header = f"  {'config':<12} {'phase':<14} {'count':>6} {'p50':>8} {'p99':>8} {'max':>8}"
    print(header)
    print("  " + "-" * (len(header) - 2), flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Time from a write's acknowledgement by one replica to its arrival on "
        "another replica's Subscribe stream (PostgreSQL)."
    )
    parser.add_argument("--events", type=int, default=200, help="writes per phase (200)")
    parser.add_argument(
        "--in-flight", type=int, default=8, help="outstanding writes in the concurrent phase (8)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured writes first (20)")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "replica_visibility.json",
        help="JSON results file",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.in_flight < 1 or args.warmup < 0:
        parser.error("--events and --in-flight must be positive, --warmup not negative")
    return args


def run(args: argparse.Namespace, settings: Settings) -> list[PhaseResult]:
    """Measure every configuration on a fresh schema; stop servers, drop the schema."""
    pg = settings.postgres
    results: list[PhaseResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="incidents-replica-bench-") as tmp,
        fresh_schema(pg) as schema,
    ):
        print(
            f"PostgreSQL {pg.user}@{pg.host}:{pg.port}/{pg.dbname}, schema {schema}; "
            f"projections in process: {projections_in_process()}"
        )
        print_header(args)
        for config, poll_interval in CONFIGS:
            with replicas(Path(tmp), schema, config, poll_interval) as (a, b):
                results.extend(asyncio.run(measure(config, a, b, args)))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, report, write the JSON; return the exit status."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks stop the servers and drop the schema.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    try:
        settings = Settings.from_env()
        results = run(args, settings)
    except (ConfigError, ServerStartError, psycopg.OperationalError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    # A failed call is also what Ctrl-C in a terminal can give: it stops the servers too.
    except (MissingEventsError, grpc.RpcError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped, schema dropped", file=sys.stderr)
        return 130
    total_seconds = time.perf_counter() - started
    pg = settings.postgres
    document: dict[str, Any] = {
        "benchmark": "replica_visibility",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(total_seconds, 1),
        "target": f"lag ≤ {TARGET_MS:.0f} ms",
        "events_per_phase": args.events,
        "warmup": args.warmup,
        "in_flight": args.in_flight,
        "projections_in_process": projections_in_process(),
        "postgres": f"{pg.user}@{pg.host}:{pg.port}/{pg.dbname}",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpc": grpc.__version__,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "results": [asdict(r) for r in results],
    }
    write_json(args.output, document)
    print(f"\ntotal {total_seconds:.0f} s; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
