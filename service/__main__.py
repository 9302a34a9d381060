"""Run the registry server: `python -m service` (configured by environment variables)."""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog

from projections.assembly import build_projections
from projections.store import store_for
from service.api.server import start_server
from service.app.registry import Registry
from service.areas import CatalogError, load_catalog
from service.config import ConfigError, Settings
from service.logs import configure_logging
from service.store.base import BackendUnavailableError, EventStoreBackend
from service.store.postgres import PostgresEventStore
from service.store.sqlite import SQLiteEventStore

log = structlog.get_logger("service")


async def serve(settings: Settings) -> None:
    """Open the store, serve until SIGTERM or SIGINT, then drain and close cleanly."""
    catalog = load_catalog(settings.area_catalog)
    backend = open_backend(settings)
    registry = Registry(
        backend,
        catalog,
        max_batch=settings.max_batch,
        read_threads=settings.read_threads,
        poll_interval=settings.poll_interval_seconds,
        wave_rule=settings.wave_rule,
    )
    try:
        projections = build_projections(
            registry,
            store_for(backend, settings.sqlite_projections_path),
            apply=settings.projections_in_process,
            poll_interval=settings.poll_interval_seconds,
        )
        running = await start_server(
            registry,
            settings.listen_address,
            stall_seconds=settings.subscriber_stall_seconds,
            projections=projections,
        )
    except BaseException:
        registry.close()
        raise
    log.info(
        "server_started",
        address=settings.listen_address,
        port=running.port,
        **_store_description(settings),
        area_catalog=catalog.catalog_id,
        transport="plaintext",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("server_stopping", grace_seconds=settings.shutdown_grace_seconds)
    await running.stop(settings.shutdown_grace_seconds)
    registry.close()
    log.info("server_stopped")


def open_backend(settings: Settings) -> EventStoreBackend:
    """Open the configured event store."""
    if settings.store == "postgres":
        return PostgresEventStore(settings.postgres)
    return SQLiteEventStore(settings.sqlite_path, synchronous=settings.sqlite_synchronous)


def _store_description(settings: Settings) -> dict[str, str]:
    if settings.store == "postgres":
        pg = settings.postgres
        return {"store": "postgres", "postgres": f"{pg.user}@{pg.host}:{pg.port}/{pg.dbname}"}
    return {"store": "sqlite", "sqlite_path": str(settings.sqlite_path)}


def main() -> int:
    """Entry point of `python -m service` and `incident-registry-server`."""
    try:
        settings = Settings.from_env()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings))
    except (CatalogError, BackendUnavailableError, OSError) as err:
        log.error("server_failed_to_start", error=str(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
