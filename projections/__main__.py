"""Run the projections as a worker process: `python -m projections` (same settings as the server).

In production the servers are started with INCIDENTS_PROJECTIONS_IN_PROCESS=false and one
worker applies the projections for all of them; a second worker is safe (a batch applied by
one is refused to the other) but does no extra work.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog

from projections.assembly import build_projections
from projections.store import store_for
from service.__main__ import START_FAILURES, open_backend
from service.app.registry import Registry
from service.areas import load_catalog
from service.config import ConfigError, Settings
from service.logs import configure_logging
from service.metrics import start_worker_metrics
from service.store.cipher import cipher_for

log = structlog.get_logger("projections")


async def work(settings: Settings) -> None:
    """Apply the projections until SIGTERM or SIGINT, then stop after the batch in hand."""
    catalog = load_catalog(settings.area_catalog)
    backend = open_backend(settings)
    # The registry's writer records derived events (e.g. WaveDetected) from this process too.
    registry = Registry(
        backend,
        catalog,
        read_threads=2,
        poll_interval=settings.poll_interval_seconds,
        wave_rule=settings.wave_rule,
        cipher=cipher_for(settings.encryption),
    )
    try:
        projections = build_projections(
            registry,
            store_for(backend, settings.sqlite_projections_path, migrate=settings.migrate_on_start),
        )
    except BaseException:
        registry.close()
        raise
    try:
        metrics = start_worker_metrics(settings, registry, projections)
    except BaseException:
        await projections.stop()
        registry.close()
        raise
    projections.start()
    log.info(
        "projection_worker_started",
        projections=sorted(projections.runners),
        store=settings.store,
        metrics_port=metrics.port if metrics is not None else 0,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    if metrics is not None:
        await asyncio.to_thread(metrics.stop)
    await projections.stop()
    registry.close()
    log.info(
        "projection_worker_stopped",
        positions={name: runner.position for name, runner in projections.runners.items()},
    )


def main() -> int:
    """Entry point of `python -m projections`."""
    try:
        settings = Settings.from_env()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(work(settings))
    except START_FAILURES as err:
        log.error("projection_worker_failed_to_start", error=str(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
