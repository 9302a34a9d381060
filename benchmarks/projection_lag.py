"""Live lag of the statistics projection under full-speed ReportShooting load, in-process.

On a fresh SQLite store (synchronous=FULL, the server's default) this process wires a
`Registry` and every projection exactly as `python -m service` does (`build_projections`,
same defaults, the read models in their own SQLite file), starts them in the event loop,
and drives `registry.incidents.report_shooting` from `concurrency` looping coroutines,
each with unique request ids, for warm-up + `seconds`.

Every acknowledged write records (ack time, position). One monitor coroutine waits on the
statistics runner's progress (`runner.wait_for(runner.position + 1)`, a single waiter) and
records (time, runner.position) each time the runner moves. A write's lag is the time from its ack
to the first recorded moment at which `runner.position >= position` (0 when the projection
already reflected it when the ack arrived). No gRPC: what is measured is the runner itself
(wake-up on commit, page read, decode, fold, view transaction) while it shares the process
and the GIL with the writer thread and the command handlers, as in the server.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from projections.assembly import build_projections
from projections.runner import ProjectionRunner
from projections.statistics_model import query_statistics
from projections.store import sqlite_store
from service.app.commands import ReportShooting
from service.app.registry import Registry
from service.app.results import WriteContext
from service.areas import AreaCatalog, load_catalog
from service.config import Settings
from service.domain.values import TimePrecision, Weapon, WeaponKind
from service.store.sqlite import SQLiteEventStore

CATCH_UP_TIMEOUT_S = 60.0
SQLITE_SYNCHRONOUS = "FULL"  # the server's default (INCIDENTS_SQLITE_SYNCHRONOUS)
DESCRIPTION = (
    "Benchmark: several shots were fired from a passing car at a group standing outside a "
    "night shop; one person was taken to hospital with leg wounds."
)


@dataclass
class LagResult:
    """What one live-lag run measured."""

    method: str
    concurrency: int
    warmup_seconds: float
    seconds: float
    appends: int
    appends_per_s: float
    write_p50_ms: float
    write_p99_ms: float
    lag_p50_ms: float
    lag_p95_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    lag_mean_ms: float
    projection_advances: int
    events_per_advance: float
    catch_up_ms: float
    recorded_total: int
    projected_incidents: int
    errors: int
    error_types: dict[str, int] = field(default_factory=dict)
    first_error: str = ""


@dataclass
class _Run:
    """Shared state of the drive: the window, the acks and the runner's progress timeline."""

    start: float
    end: float
    acks: list[tuple[float, float, int]] = field(default_factory=list)  # (sent, ack, position)
    timeline_times: list[float] = field(default_factory=list)
    timeline_positions: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str = ""


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of an ascending list; 0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _command(rng: random.Random, codes: list[str], now: datetime) -> ReportShooting:
    occurred = now - timedelta(minutes=rng.randint(60, 700 * 24 * 60))
    return ReportShooting(
        occurred_at=occurred,
        occurred_at_precision=TimePrecision.MINUTE,
        municipality_code=rng.choice(codes),
        reported_at=occurred + timedelta(minutes=rng.randint(5, 50)),
        address=f"Rue de la Loi {rng.randint(1, 240)}",
        weapons=(Weapon(WeaponKind.HANDGUN, rng.randint(1, 3)),),
        assailant_count=rng.randint(1, 4),
        killed=int(rng.random() < 0.1),
        injured=rng.randint(0, 3),
        description=DESCRIPTION,
    )


async def _worker(
    registry: Registry, catalog: AreaCatalog, prefix: str, seed: int, run: _Run
) -> None:
    rng = random.Random(seed)
    codes = sorted(catalog.municipalities)
    clock = time.perf_counter
    sequence = 0
    while (sent := clock()) < run.end:
        sequence += 1
        command = _command(rng, codes, datetime.now(UTC))
        try:
            result = await registry.incidents.report_shooting(
                command, WriteContext(request_id=f"{prefix}-{sequence}", actor="benchmark")
            )
        except Exception as err:  # every failure is counted and reported
            run.errors[type(err).__name__] += 1
            run.first_error = run.first_error or f"{type(err).__name__}: {err}"
            continue
        run.acks.append((sent, clock(), result.position))


async def _monitor(runner: ProjectionRunner, run: _Run) -> None:
    """Record (time, position) every time the runner moves; the only waiter on its progress."""
    while True:
        await runner.wait_for(runner.position + 1, 1.0)
        position = runner.position
        if not run.timeline_positions or position > run.timeline_positions[-1]:
            run.timeline_times.append(time.perf_counter())
            run.timeline_positions.append(position)


def _lags(run: _Run, acks: list[tuple[float, float, int]]) -> list[float]:
    lags: list[float] = []
    for _, ack, position in acks:
        index = bisect.bisect_left(run.timeline_positions, position)
        if index == len(run.timeline_positions):
            msg = f"the projection never reached position {position}"
            raise RuntimeError(msg)
        lags.append(max(0.0, run.timeline_times[index] - ack))
    return sorted(lags)


async def _drive(
    workdir: Path, concurrency: int, warmup: float, seconds: float, seed: int
) -> LagResult:
    catalog = load_catalog("brussels")
    backend = SQLiteEventStore(workdir / "live.sqlite", synchronous=SQLITE_SYNCHRONOUS)
    # The server's defaults, violence-wave detection included.
    registry = Registry(backend, catalog, wave_rule=Settings().wave_rule)
    projections = build_projections(registry, sqlite_store(workdir / "live-projections.sqlite"))
    runner = projections.runner("statistics")
    try:
        projections.start()
        now = time.perf_counter()
        run = _Run(start=now + warmup, end=now + warmup + seconds)
        monitor = asyncio.get_running_loop().create_task(_monitor(runner, run))
        run_id = uuid.uuid4().hex[:12]
        await asyncio.gather(
            *(
                _worker(registry, catalog, f"bench-lag-{run_id}-{i}", seed + i, run)
                for i in range(concurrency)
            )
        )
        last = max((position for _, _, position in run.acks), default=0)
        caught_up_from = time.perf_counter()
        if not await runner.wait_for(last, CATCH_UP_TIMEOUT_S):
            msg = f"the projection did not reach {last} within {CATCH_UP_TIMEOUT_S:.0f} s"
            raise RuntimeError(msg)
        catch_up = time.perf_counter() - caught_up_from
        await asyncio.sleep(0.05)  # let the monitor record the last advance
        monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await monitor
        rows = await projections.read(lambda tx: query_statistics(tx, "municipality", [], "year"))
    finally:
        await projections.stop()
        registry.close()
    measured = [a for a in run.acks if a[0] >= run.start and a[1] <= run.end]
    lags = _lags(run, measured)
    writes = sorted(ack - sent for sent, ack, _ in measured)
    advances = len(run.timeline_positions)
    return LagResult(
        method="in-process (Registry + every projection in one asyncio loop, no gRPC)",
        concurrency=concurrency,
        warmup_seconds=warmup,
        seconds=seconds,
        appends=len(measured),
        appends_per_s=len(measured) / seconds,
        write_p50_ms=percentile(writes, 50) * 1000,
        write_p99_ms=percentile(writes, 99) * 1000,
        lag_p50_ms=percentile(lags, 50) * 1000,
        lag_p95_ms=percentile(lags, 95) * 1000,
        lag_p99_ms=percentile(lags, 99) * 1000,
        lag_max_ms=(lags[-1] * 1000) if lags else 0.0,
        lag_mean_ms=(sum(lags) / len(lags) * 1000) if lags else 0.0,
        projection_advances=advances,
        events_per_advance=(run.timeline_positions[-1] / advances) if advances else 0.0,
        catch_up_ms=catch_up * 1000,
        recorded_total=len(run.acks),
        projected_incidents=sum(row.incidents for row in rows),
        errors=sum(run.errors.values()),
        error_types=dict(run.errors),
        first_error=run.first_error,
    )


def live_lag(concurrency: int, warmup: float, seconds: float, seed: int) -> LagResult:
    """Run the live-lag measurement in a fresh temporary directory."""
    with tempfile.TemporaryDirectory(prefix="incidents-projection-lag-") as tmp:
        return asyncio.run(_drive(Path(tmp), concurrency, warmup, seconds, seed))
