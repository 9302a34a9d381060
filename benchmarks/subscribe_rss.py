"""Server memory for the Subscribe benchmark: the server's VmRSS through a whole large log.

`rss_benchmark` builds a second log, then against a fresh server each subscribes through it
from the start to caught_up (BOTH, 100) and pages through it with ReadAll, while a thread
samples the SERVER process's VmRSS (every 20 ms); VmHWM is read at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from logbuild import build_log
from servers import ServerProcess
from subscribe_passes import (
    CHANNEL_OPTIONS,
    DEFAULT_CONFIG,
    RunResult,
    read_all_pass,
    start_server,
    subscribe_pass,
    wait_ready,
)

RSS_BOUND_MB = 300.0
RSS_SAMPLE_SECONDS = 0.02
RSS_DOMAIN_EVENTS = 50_000  # the RSS log replays these histories under fresh ids


@dataclass
class RssResult:
    """Server memory while one pass went through the whole log."""

    mode: str
    events: int
    seconds: float
    events_per_s: float
    rss_before_mb: float
    peak_rss_mb: float
    hwm_mb: float
    bound_mb: float = RSS_BOUND_MB
    within_bound: bool = False
    samples: int = 0


def _proc_status(pid: int) -> dict[str, float]:
    values: dict[str, float] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    return values


class RssSampler:
    """Samples a process's VmRSS in a thread, keeping the maximum."""

    def __init__(self, pid: int, interval: float = RSS_SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        rss = _proc_status(self.pid).get("VmRSS", 0.0)
        self.peak = max(self.peak, rss)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)


async def rss_pass(
    server: ServerProcess, mode: str, run: Callable[[grpc.aio.Channel], Any]
) -> RssResult:
    """Run one pass through the log against a fresh server, sampling the server's RSS."""
    await wait_ready(server)
    async with grpc.aio.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        before = _proc_status(server.pid).get("VmRSS", 0.0)
        with RssSampler(server.pid) as sampler:
            result: RunResult = await run(channel)
        hwm = _proc_status(server.pid).get("VmHWM", 0.0)
    peak = max(sampler.peak, hwm)
    return RssResult(
        mode=mode,
        events=result.events,
        seconds=result.seconds,
        events_per_s=result.events_per_s,
        rss_before_mb=before,
        peak_rss_mb=sampler.peak,
        hwm_mb=hwm,
        within_bound=peak <= RSS_BOUND_MB,
        samples=sampler.samples,
    )


def rss_benchmark(workdir: Path, total: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build a log of `total` events, then measure server RSS for Subscribe and ReadAll."""
    path = workdir / "rss.sqlite"
    print(f"\nbuilding a {total:,}-event log for the RSS runs ...", flush=True)
    stats = build_log(path, total, args.seed + 1, domain_events=RSS_DOMAIN_EVENTS, progress=True)
    print(
        f"  {stats.events:,} events in {stats.seconds:.1f} s "
        f"({stats.events_per_s:,.0f} events/s), {stats.file_mb:.0f} MB",
        flush=True,
    )
    passes: list[tuple[str, Callable[[grpc.aio.Channel], Any]]] = [
        (
            f"Subscribe {DEFAULT_CONFIG[0]} {DEFAULT_CONFIG[1]}",
            lambda ch: subscribe_pass(ch, *DEFAULT_CONFIG, total),
        ),
        (f"ReadAll BOTH {args.batch}", lambda ch: read_all_pass(ch, args.batch, total)),
    ]
    results: list[RssResult] = []
    for index, (mode, run) in enumerate(passes):
        server = start_server(path, workdir, f"rss-server-{index}")
        try:
            result = asyncio.run(rss_pass(server, mode, run))
        finally:
            server.stop()
        print(
            f"  {mode}: {result.events_per_s:,.0f} events/s in {result.seconds:.1f} s; server RSS "
            f"{result.rss_before_mb:.0f} MB before, peak {result.peak_rss_mb:.0f} MB "
            f"(VmHWM {result.hwm_mb:.0f} MB)",
            flush=True,
        )
        results.append(result)
    return {"build": asdict(stats), "passes": [asdict(r) for r in results]}
