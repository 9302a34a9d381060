"""Append benchmark: ReportShooting against the real registry versus a bare gRPC echo server.

Run by `make bench` as `.venv/bin/python benchmarks/append.py`. Every server is a separate OS
process listening on a free 127.0.0.1 port, started one after another in the same run:

* `benchmarks/echo_server.py`, a grpc.aio server with the same options that answers the same
  method path with the request bytes unchanged: the baseline;
* the registry, `python -m service`, once per setup (`--setups`, default sqlite:1, sqlite:2,
  postgres:1, postgres:2: the store, and INCIDENTS_SERVER_PROCESSES sharing the port), on a
  fresh SQLite file or a fresh PostgreSQL schema (INCIDENTS_POSTGRES_* say where the server
  is; default 127.0.0.1:5432), at INCIDENTS_LOG_LEVEL=warning so access logs do not dominate
  (`--access-log` keeps the info level). Projections are not applied in the server processes
  (production runs them in a worker) unless `--projections-in-process`.

For each in-flight level (1, 8, 32) and each target, N worker coroutines loop on grpc.aio
channels (`--connections`, default 4, each its own TCP connection, so that the kernel can
spread them over processes sharing a port) sending valid ReportShootingRequest messages (a
unique request_id per call), first for a warm-up (1 s), then for the measured window
(`--seconds`, default 5 s). Only calls that complete inside the window are counted; any
non-OK status is an error. The client treats every server identically: it serializes the
request itself and keeps the reply as raw bytes.

It prints a table (target, in-flight, calls, calls/s, p50 ms, p99 ms, errors), the ratio of
each setup's throughput to echo's per level, the ratio of 2 processes to 1 per store, the
targets with PASS/MISS, and writes the results as JSON under benchmarks/results/. Exit status:
0 on success, 1 when a call failed, 2 when a server failed to start.
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
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cpu import CpuReading, read_cpu
from incident_registry_client.proto.incidents.v1 import incident_service_pb2
from servers import (
    ROOT,
    SQLITE_NAME,
    STARTUP_TIMEOUT_S,
    ServerProcess,
    ServerStartError,
    free_ports,
    fresh_schema,
    shooting_request,
    spawn,
    start_registry,
    wait_serving,
)
from servers import (
    write_json as write_document,
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
TARGET_RATIOS = {"sqlite": 0.6, "postgres": 0.5}
TARGET_SCALING = 1.6
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
    server_cpu_ms_per_call: float = 0.0
    """CPU time of the server's processes (all of them) per call in the measured window."""
    client_cpu_ms_per_call: float = 0.0
    postgres_cpu_ms_per_call: float = 0.0
    cores_busy: float = 0.0
    """Server + client + PostgreSQL CPU seconds per second of the window."""


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


async def _send_once(target: str, payload: bytes) -> bytes:
    async with grpc.aio.insecure_channel(target) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            METHOD_PATH, request_serializer=None, response_deserializer=None
        )
        try:
            return await call(payload, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            msg = f"{target} rejected a valid request: {err.code().name}: {err.details()}"
            raise ServerStartError(msg) from None


def _verify_request() -> bytes:
    message = shooting_request()
    message.request_id = f"bench-verify-{uuid.uuid4().hex}"
    return message.SerializeToString()


async def verify_echo(target: str) -> None:
    """The echo server must return the request bytes unchanged."""
    payload = _verify_request()
    if await _send_once(target, payload) != payload:
        msg = "echo server did not return the request bytes unchanged"
        raise ServerStartError(msg)


async def verify_registry(target: str) -> None:
    """The registry must record a request as a fresh incident."""
    reply = await _send_once(target, _verify_request())
    result = incident_service_pb2.ReportShootingResponse.FromString(reply).result
    if not result.aggregate_id or result.version != 1 or result.replayed:
        msg = f"registry reply is not a fresh incident: {result}"
        raise ServerStartError(msg)


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


async def _read_cpu_at(moment: float, server_pid: int) -> CpuReading:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))
    return read_cpu(server_pid)


async def run_level(
    channels: list[grpc.aio.Channel],
    target: str,
    in_flight: int,
    warmup: float,
    seconds: float,
    *,
    server_pid: int,
) -> LevelResult:
    """Drive `in_flight` looping workers, spread over `channels`, for warm-up + `seconds`;
    read the CPU used by the server, this client and PostgreSQL in the measured window."""
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
        channel.unary_unary(METHOD_PATH, request_serializer=None, response_deserializer=None)
        for channel in channels
    ]
    template = shooting_request()
    run_id = uuid.uuid4().hex[:12]
    now = time.perf_counter()
    window = _Window(start=now + warmup, end=now + warmup + seconds)
    cpu_start = asyncio.create_task(_read_cpu_at(window.start, server_pid))
    cpu_end = asyncio.create_task(_read_cpu_at(window.end, server_pid))
    await asyncio.gather(
        *(
            _worker(calls[i % len(calls)], template, f"bench-{run_id}-{in_flight}-{i}", window)
            for i in range(in_flight)
        )
    )
    used = (await cpu_end).minus(await cpu_start)
    ordered = sorted(window.latencies)
    per_call = 1000 / max(1, len(ordered))
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
        server_cpu_ms_per_call=used.server * per_call,
        client_cpu_ms_per_call=used.client * per_call,
        postgres_cpu_ms_per_call=used.postgres * per_call,
        cores_busy=(used.server + used.client + used.postgres) / used.at if used.at else 0.0,
    )


@dataclass(frozen=True)
class Setup:
    """One way of running the registry: its store and how many server processes share the port."""

    store: str
    processes: int

    @property
    def name(self) -> str:
        """How the results name it, e.g. "sqlite:2" (as on the command line)."""
        return f"{self.store}:{self.processes}"

    @classmethod
    def parse(cls, text: str) -> Setup:
        """Parse "store:processes", e.g. "postgres:2"."""
        store, _, processes = text.partition(":")
        if store not in {"sqlite", "postgres"} or not processes.isdigit() or int(processes) < 1:
            msg = f"a setup is sqlite:N or postgres:N, not {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return cls(store, int(processes))


def open_channels(target: str, count: int) -> list[grpc.aio.Channel]:
    """`count` channels with a connection each, so SO_REUSEPORT can spread them over processes."""
    return [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]


async def measure(
    target: str, name: str, server_pid: int, args: argparse.Namespace
) -> list[LevelResult]:
    """Run every level against `target`, spreading the workers over `args.connections`."""
    channels = open_channels(target, args.connections)
    results: list[LevelResult] = []
    try:
        for level in LEVELS:
            result = await run_level(
                channels, name, level, args.warmup, args.seconds, server_pid=server_pid
            )
            print(
                f"  {name:<12} {level:>3} in flight: {result.calls_per_s:8.1f} calls/s, "
                f"p99 {result.p99_ms:.2f} ms, {result.errors} errors",
                flush=True,
            )
            results.append(result)
    finally:
        for channel in channels:
            await channel.close()
    return results


async def benchmark_echo(echo: ServerProcess, args: argparse.Namespace) -> list[LevelResult]:
    """Wait for the echo server, check it mirrors a request, and measure it."""
    await wait_echo_ready(echo, echo.target)
    await verify_echo(echo.target)
    return await measure(echo.target, ECHO, echo.pid, args)


async def benchmark_registry(
    registry: ServerProcess, setup: Setup, args: argparse.Namespace
) -> list[LevelResult]:
    """Wait for a registry, check it records a request, and measure it."""
    await wait_serving(
        registry, registry.target, STARTUP_TIMEOUT_S, service=SERVICE.full_name, label=setup.name
    )
    await verify_registry(registry.target)
    return await measure(registry.target, setup.name, registry.pid, args)


def _by_key(results: list[LevelResult]) -> dict[tuple[str, int], LevelResult]:
    return {(r.target, r.in_flight): r for r in results}


def summarize(results: list[LevelResult], setups: list[Setup]) -> dict[str, Any]:
    """Return each setup's ratios to echo per level, the scaling ratios, and the targets."""
    by_key = _by_key(results)

    def rate(name: str, level: int) -> float:
        return by_key[name, level].calls_per_s

    ratios = {
        setup.name: {
            level: rate(setup.name, level) / rate(ECHO, level) if rate(ECHO, level) else 0.0
            for level in LEVELS
        }
        for setup in setups
    }
    names = {setup.name for setup in setups}
    scaling: dict[str, float] = {}
    for setup in setups:
        single = Setup(setup.store, 1).name
        if setup.processes > 1 and single in names:
            base = rate(single, TARGET_RATIO_LEVEL)
            scaling[f"{setup.name} ÷ {single}"] = (
                rate(setup.name, TARGET_RATIO_LEVEL) / base if base else 0.0
            )
    targets: list[dict[str, Any]] = []
    for setup in setups:
        if setup.processes != 1:
            continue
        aim = TARGET_RATIOS[setup.store]
        ratio = ratios[setup.name][TARGET_RATIO_LEVEL]
        p99 = by_key[setup.name, TARGET_P99_LEVEL].p99_ms
        targets.append(
            {
                "name": f"{setup.name}: ≥ {aim}× echo at {TARGET_RATIO_LEVEL} in flight",  # noqa: RUF001
                "value": round(ratio, 3),
                "pass": ratio >= aim,
            }
        )
        targets.append(
            {
                "name": (
                    f"{setup.name}: p99 ≤ {TARGET_P99_MS:.0f} ms at {TARGET_P99_LEVEL} in flight"
                ),
                "value": round(p99, 3),
                "pass": p99 <= TARGET_P99_MS,
            }
        )
    for name, value in scaling.items():
        targets.append(
            {
                "name": f"{name} ≥ {TARGET_SCALING}× at {TARGET_RATIO_LEVEL} in flight",  # noqa: RUF001
                "value": round(value, 3),
                "pass": value >= TARGET_SCALING,
            }
        )
    return {"ratios": ratios, "scaling": scaling, "targets": targets}


def print_report(results: list[LevelResult], summary: dict[str, Any]) -> None:
    """Print the results table, the ratios and the targets."""
    header = (
        f"{'target':<13}{'in-flight':>10}{'calls':>9}{'calls/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'srv cpu':>9}{'cli cpu':>9}{'pg cpu':>8}{'cores':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.target:<13}{r.in_flight:>10}{r.calls:>9}{r.calls_per_s:>10.1f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
            f"{r.server_cpu_ms_per_call:>9.3f}{r.client_cpu_ms_per_call:>9.3f}"
            f"{r.postgres_cpu_ms_per_call:>8.3f}{r.cores_busy:>7.2f}"
        )
    print("(cpu: CPU milliseconds per call of the server's processes, this client and PostgreSQL;")
    print(" cores: CPU seconds of all three per second)")
    print()
    print("registry calls/s ÷ echo calls/s")
    for name, by_level in summary["ratios"].items():
        cells = ", ".join(f"{level}: {ratio:.2f}×" for level, ratio in by_level.items())  # noqa: RUF001
        print(f"  {name:<12} {cells}")
    for name, value in summary["scaling"].items():
        print(f"  {name}: {value:.2f}× at {TARGET_RATIO_LEVEL} in flight")  # noqa: RUF001
    print()
    for target in summary["targets"]:
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"  {verdict}  {target['name']} (measured {target['value']})")
    for r in results:
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
        "projections_in_process": args.projections_in_process,
        "connections": args.connections,
        "setups": [setup.name for setup in args.setups],
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
        "ratios": {
            name: {str(level): round(v, 4) for level, v in by_level.items()}
            for name, by_level in summary["ratios"].items()
        },
        "scaling": {name: round(v, 4) for name, v in summary["scaling"].items()},
        "targets": summary["targets"],
    }
    write_document(path, document)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="ReportShooting throughput: the registry versus a bare gRPC echo server."
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level (1)")
    parser.add_argument(
        "--setups",
        type=lambda text: [Setup.parse(part) for part in text.split(",")],
        default=[
            Setup("sqlite", 1),
            Setup("sqlite", 2),
            Setup("postgres", 1),
            Setup("postgres", 2),
        ],
        help="comma-separated store:processes (default sqlite:1,sqlite:2,postgres:1,postgres:2)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=4,
        help="client connections the workers are spread over, for every target (4)",
    )
    parser.add_argument(
        "--projections-in-process",
        action="store_true",
        help="apply the projections in the server processes (default: off, as in production, "
        "where a projection worker applies them)",
    )
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
    if args.seconds <= 0 or args.warmup < 0 or args.connections < 1:
        parser.error("--seconds and --connections must be positive and --warmup not negative")
    if args.output is None:
        name = "append-access-log.json" if args.access_log else "append.json"
        args.output = RESULTS_DIR / name
    return args


def start_setup(
    workdir: Path, port: int, setup: Setup, args: argparse.Namespace, schema: str
) -> ServerProcess:
    """Start the registry as `setup` says, on a fresh SQLite file or PostgreSQL schema."""
    env = {
        "INCIDENTS_SERVER_PROCESSES": str(setup.processes),
        "INCIDENTS_PROJECTIONS_IN_PROCESS": str(args.projections_in_process).lower(),
    }
    if setup.store == "postgres":
        env |= {"INCIDENTS_STORE": "postgres", "INCIDENTS_POSTGRES_SCHEMA": schema}
    return start_registry(
        workdir,
        port,
        sqlite_path=workdir / f"{setup.store}-{setup.processes}-{SQLITE_NAME}",
        log_level="info" if args.access_log else "warning",
        extra_env=env,
        name=setup.name,
        label=f"registry {setup.name}",
    )


def main(argv: list[str] | None = None) -> int:
    """Start each server in turn, run the benchmark, report, and always stop the servers."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` below still stops the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    variant = "info (access log on)" if args.access_log else "warning (access log off)"
    print(
        f"setups {', '.join(s.name for s in args.setups)}; log level {variant}; "
        f"projections {'in process' if args.projections_in_process else 'not applied'}; "
        f"{args.connections} client connections\n"
        f"levels {', '.join(map(str, LEVELS))} in flight; "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s measured each",
        flush=True,
    )
    results: list[LevelResult] = []
    with tempfile.TemporaryDirectory(prefix="incidents-bench-") as tmp:
        workdir = Path(tmp)
        try:
            echo = start_echo(workdir, free_ports(1)[0])
            try:
                results += asyncio.run(benchmark_echo(echo, args))
            finally:
                echo.stop()
            for setup in args.setups:
                with fresh_schema() as schema:
                    registry = start_setup(workdir, free_ports(1)[0], setup, args, schema)
                    try:
                        results += asyncio.run(benchmark_registry(registry, setup, args))
                    finally:
                        registry.stop()
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
    summary = summarize(results, args.setups)
    print_report(results, summary)
    write_json(args.output, results, summary, args)
    print(f"\nresults written to {args.output}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
