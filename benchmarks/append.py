"""Append benchmark: ReportShooting against the real registry versus a bare gRPC echo server.

Run by `make bench` as `.venv/bin/python benchmarks/append.py`. It starts two servers as
separate OS processes:

* the registry, `python -m service`, on a fresh temporary SQLite file, listening on a free
  127.0.0.1 port, with INCIDENTS_LOG_LEVEL=warning so access logs do not dominate
  (`--access-log` keeps the info level and reports that variant);
* `benchmarks/echo_server.py`, a grpc.aio server with the same options that answers the same
  method path with the request bytes unchanged.

For each in-flight level (1, 8, 32) and each server, N worker coroutines loop on ONE grpc.aio
channel sending valid ReportShootingRequest messages (a unique request_id per call), first for
a warm-up (1 s), then for the measured window (`--seconds`, default 5 s). Only calls that
complete inside the window are counted; any non-OK status is an error. The client treats both
servers identically: it serializes the request itself and keeps the reply as raw bytes.

It prints a table (target, in-flight, calls, calls/s, p50 ms, p99 ms, errors), the ratio of
registry to echo throughput per level, the targets with PASS/MISS, and writes the results as
JSON under benchmarks/results/. Exit status: 0 on success, 1 when a call failed, 2 when a
server failed to start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from incident_registry_client.proto.incidents.v1 import incident_pb2, incident_service_pb2
from servers import (
    ROOT,
    SQLITE_NAME,
    STARTUP_TIMEOUT_S,
    ServerProcess,
    ServerStartError,
    free_ports,
    spawn,
    start_registry,
    wait_serving,
)

RESULTS_DIR = ROOT / "benchmarks" / "results"
ECHO_SCRIPT = Path(__file__).resolve().with_name("echo_server.py")

SERVICE = incident_service_pb2.DESCRIPTOR.services_by_name["IncidentService"]
METHOD_PATH = f"/{SERVICE.full_name}/{SERVICE.methods_by_name['ReportShooting'].name}"

LEVELS: tuple[int, ...] = (1, 8, 32)
ECHO = "echo"
REGISTRY = "registry"
CALL_TIMEOUT_S = 10.0

TARGET_RATIO_LEVEL = 32
TARGET_RATIO = 0.6
TARGET_P99_LEVEL = 8
TARGET_P99_MS = 20.0


@dataclass
class LevelResult:
    """The measurements of one target at one in-flight level."""

    target: str
    in_flight: int
    seconds: float
    calls: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_codes: dict[str, int] = field(default_factory=dict)
    first_error: str = ""


def start_echo(workdir: Path, port: int) -> ServerProcess:
    """Start benchmarks/echo_server.py."""
    argv = [sys.executable, str(ECHO_SCRIPT), "--port", str(port)]
    return spawn(
        ECHO, argv, os.environ, workdir, target=f"127.0.0.1:{port}", label=f"{ECHO} server"
    )


async def wait_echo_ready(server: ServerProcess, target: str) -> None:
    """Wait until a channel to the echo server is ready."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with grpc.aio.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            server.check_alive()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(channel.channel_ready(), timeout=0.5)
                return
    server.check_alive()
    msg = f"echo server not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{server.log_tail()}"
    raise ServerStartError(msg)


async def verify_replies(echo_target: str, registry_target: str) -> None:
    """Send one request to each server: echo must mirror it, the registry must record it."""
    message = request_template()
    message.request_id = f"bench-verify-{uuid.uuid4().hex}"
    payload = message.SerializeToString()
    for target in (echo_target, registry_target):
        async with grpc.aio.insecure_channel(target) as channel:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                METHOD_PATH, request_serializer=None, response_deserializer=None
            )
            try:
                reply = await call(payload, timeout=CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError as err:
                msg = f"{target} rejected a valid request: {err.code().name}: {err.details()}"
                raise ServerStartError(msg) from None
        if target == echo_target:
            if reply != payload:
                msg = "echo server did not return the request bytes unchanged"
                raise ServerStartError(msg)
            continue
        result = incident_service_pb2.ReportShootingResponse.FromString(reply).result
        if not result.aggregate_id or result.version != 1 or result.replayed:
            msg = f"registry reply is not a fresh incident: {result}"
            raise ServerStartError(msg)


def request_template() -> incident_service_pb2.ReportShootingRequest:
    """Return a valid ReportShootingRequest without its request_id."""
    occurred = Timestamp()
    occurred.FromDatetime(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    return incident_service_pb2.ReportShootingRequest(
        occurred_at=occurred,
        occurred_at_precision=incident_pb2.TIME_PRECISION_MINUTE,
        municipality_code="21001",
        address="Rue de la Loi 16",
        weapons=[incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=1)],
        assailant_count=2,
        injured=1,
        description="Benchmark: shots fired from a passing car, one person injured.",
    )


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of an ascending list; 0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class _Window:
    """Shared state of one level run: the measured window and what landed in it."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str = ""


async def _worker(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    template: incident_service_pb2.ReportShootingRequest,
    prefix: str,
    window: _Window,
) -> None:
    message = incident_service_pb2.ReportShootingRequest()
    message.CopyFrom(template)
    sequence = 0
    clock = time.perf_counter
    while (started := clock()) < window.end:
        sequence += 1
        message.request_id = f"{prefix}-{sequence}"
        payload = message.SerializeToString()
        try:
            await call(payload, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            # Errors count over the whole level, warm-up included: the registry must say OK.
            window.errors[err.code().name] += 1
            window.first_error = window.first_error or f"{err.code().name}: {err.details()}"
            continue
        finished = clock()
        if started >= window.start and finished <= window.end:
            window.latencies.append(finished - started)


async def run_level(
    channel: grpc.aio.Channel, target: str, in_flight: int, warmup: float, seconds: float
) -> LevelResult:
    """Drive `in_flight` looping workers on `channel` for warm-up + `seconds`."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        METHOD_PATH, request_serializer=None, response_deserializer=None
    )
    template = request_template()
    run_id = uuid.uuid4().hex[:12]
    now = time.perf_counter()
    window = _Window(start=now + warmup, end=now + warmup + seconds)
    await asyncio.gather(
        *(
            _worker(call, template, f"bench-{run_id}-{target}-{in_flight}-{i}", window)
            for i in range(in_flight)
        )
    )
    ordered = sorted(window.latencies)
    return LevelResult(
        target=target,
        in_flight=in_flight,
        seconds=seconds,
        calls=len(ordered),
        calls_per_s=len(ordered) / seconds,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        max_ms=(ordered[-1] * 1000) if ordered else 0.0,
        errors=sum(window.errors.values()),
        error_codes=dict(window.errors),
        first_error=window.first_error,
    )


async def benchmark(
    echo: ServerProcess,
    echo_target: str,
    registry: ServerProcess,
    registry_target: str,
    args: argparse.Namespace,
) -> list[LevelResult]:
    """Wait for both servers, then run every level against both, alternating which goes first."""
    await asyncio.gather(
        wait_echo_ready(echo, echo_target),
        wait_serving(
            registry,
            registry_target,
            STARTUP_TIMEOUT_S,
            service=SERVICE.full_name,
            label=REGISTRY,
        ),
    )
    await verify_replies(echo_target, registry_target)
    results: list[LevelResult] = []
    async with (
        grpc.aio.insecure_channel(echo_target) as echo_channel,
        grpc.aio.insecure_channel(registry_target) as registry_channel,
    ):
        channels = {ECHO: echo_channel, REGISTRY: registry_channel}
        for index, level in enumerate(LEVELS):
            order = (ECHO, REGISTRY) if index % 2 == 0 else (REGISTRY, ECHO)
            for target in order:
                result = await run_level(channels[target], target, level, args.warmup, args.seconds)
                print(
                    f"  {target:<8} {level:>3} in flight: {result.calls_per_s:8.1f} calls/s, "
                    f"p99 {result.p99_ms:.2f} ms, {result.errors} errors",
                    flush=True,
                )
                results.append(result)
    return results


def _by_key(results: list[LevelResult]) -> dict[tuple[str, int], LevelResult]:
    return {(r.target, r.in_flight): r for r in results}


def summarize(results: list[LevelResult]) -> dict[str, Any]:
    """Return the per-level ratios and the targets with their verdicts."""
    by_key = _by_key(results)
    ratios = {
        level: (
            by_key[REGISTRY, level].calls_per_s / by_key[ECHO, level].calls_per_s
            if by_key[ECHO, level].calls_per_s
            else 0.0
        )
        for level in LEVELS
    }
    ratio = ratios[TARGET_RATIO_LEVEL]
    p99 = by_key[REGISTRY, TARGET_P99_LEVEL].p99_ms
    targets = [
        {
            "name": f"aim ≥ {TARGET_RATIO}× at {TARGET_RATIO_LEVEL} in flight",  # noqa: RUF001
            "value": round(ratio, 3),
            "pass": ratio >= TARGET_RATIO,
        },
        {
            "name": f"p99 ≤ {TARGET_P99_MS:.0f} ms at {TARGET_P99_LEVEL} in flight",
            "value": round(p99, 3),
            "pass": p99 <= TARGET_P99_MS,
        },
    ]
    return {"ratios": ratios, "targets": targets}


def print_report(results: list[LevelResult], summary: dict[str, Any]) -> None:
    """Print the results table, the ratios and the targets."""
    header = (
        f"{'target':<9}{'in-flight':>10}{'calls':>9}{'calls/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    ordered = sorted(results, key=lambda r: (r.in_flight, r.target))
    for r in ordered:
        print(
            f"{r.target:<9}{r.in_flight:>10}{r.calls:>9}{r.calls_per_s:>10.1f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
        )
    print()
    print("registry calls/s ÷ echo calls/s")
    for level, ratio in summary["ratios"].items():
        print(f"  {level:>3} in flight: {ratio:.2f}×")  # noqa: RUF001
    print()
    for target in summary["targets"]:
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"  {verdict}  {target['name']} (measured {target['value']})")
    for r in ordered:
        if r.errors:
            print(f"  ERRORS {r.target} at {r.in_flight} in flight: {r.error_codes}")
            print(f"         first: {r.first_error}")


def write_json(
    path: Path, results: list[LevelResult], summary: dict[str, Any], args: argparse.Namespace
) -> None:
    """Write the run's parameters, results, ratios and targets as JSON."""
    document = {
        "benchmark": "append",
        "method": METHOD_PATH,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "access_log": args.access_log,
        "registry_log_level": "info" if args.access_log else "warning",
        "warmup_seconds": args.warmup,
        "seconds": args.seconds,
        "levels": list(LEVELS),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpc": grpc.__version__,
        },
        "results": [asdict(r) for r in results],
        "ratios": {str(level): round(v, 4) for level, v in summary["ratios"].items()},
        "targets": summary["targets"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="ReportShooting throughput: the registry versus a bare gRPC echo server."
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level (1)")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="run the registry at INCIDENTS_LOG_LEVEL=info, writing an access log line per call",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON file (default benchmarks/results/append.json, "
        "or append-access-log.json with --access-log)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    if args.output is None:
        name = "append-access-log.json" if args.access_log else "append.json"
        args.output = RESULTS_DIR / name
    return args


def main(argv: list[str] | None = None) -> int:
    """Start both servers, run the benchmark, report, and always stop the servers."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` below still stops both servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="incidents-bench-") as tmp:
        workdir = Path(tmp)
        echo_port, registry_port = free_ports(2)
        servers: list[ServerProcess] = []
        try:
            servers.append(start_echo(workdir, echo_port))
            servers.append(
                start_registry(
                    workdir,
                    registry_port,
                    log_level="info" if args.access_log else "warning",
                    name=REGISTRY,
                    label=f"{REGISTRY} server",
                )
            )
            variant = "info (access log on)" if args.access_log else "warning (access log off)"
            print(
                f"echo server  127.0.0.1:{echo_port}  pid {servers[0].process.pid}\n"
                f"registry     127.0.0.1:{registry_port}  pid {servers[1].process.pid}  "
                f"log level {variant}, SQLite {workdir / SQLITE_NAME}\n"
                f"levels {', '.join(map(str, LEVELS))} in flight; "
                f"{args.warmup:g} s warm-up + {args.seconds:g} s measured each",
                flush=True,
            )
            results = asyncio.run(
                benchmark(
                    servers[0],
                    f"127.0.0.1:{echo_port}",
                    servers[1],
                    f"127.0.0.1:{registry_port}",
                    args,
                )
            )
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
        finally:
            for server in servers:
                server.stop()
    summary = summarize(results)
    print_report(results, summary)
    write_json(args.output, results, summary, args)
    print(f"\nresults written to {args.output}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
