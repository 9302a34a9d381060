"""Run the registry server: `python -m service [serve|migrate]` (configured by environment).

`serve` (the default) runs the server, or INCIDENTS_SERVER_PROCESSES of them on one port;
`migrate` creates or upgrades the event store's and the read models' tables, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from service.metrics import server_metrics
from service.security.auth import ServerSecurity, build_server_security
from service.security.settings import SecurityConfigError, check_exposure
from service.store.base import BackendUnavailableError, EventStoreBackend, SchemaNotReadyError
from service.store.cipher import EncryptionKeyError, cipher_for, encryption_description
from service.store.postgres import PostgresEventStore
from service.store.sqlite import SQLiteEventStore
from service.supervisor import Supervisor
from service.tracing import Tracing, tracing_for

log = structlog.get_logger("service")

START_FAILURES: tuple[type[Exception], ...] = (
    CatalogError,
    BackendUnavailableError,
    SchemaNotReadyError,
    EncryptionKeyError,
    OSError,
)
"""What keeps a server, a migration or a worker from starting: logged, exit status 1."""


async def serve(settings: Settings, security: ServerSecurity | None = None) -> None:
    """Open the store, serve until SIGTERM or SIGINT, then drain and close cleanly.

    `security` (default: built from `settings.security`) is the server's TLS and call guard.
    With INCIDENTS_TRACING on, calls are traced and the spans flushed when the server stops.
    """
    exposure = check_exposure(settings.listen_address, settings.security)
    if security is None:
        security = build_server_security(settings.security)
    catalog = load_catalog(settings.area_catalog)
    backend = open_backend(settings)
    registry = Registry(
        backend,
        catalog,
        max_batch=settings.max_batch,
        read_threads=settings.read_threads,
        poll_interval=settings.poll_interval_seconds,
        wave_rule=settings.wave_rule,
        cipher=cipher_for(settings.encryption),
    )
    tracing: Tracing | None = None
    try:
        tracing = tracing_for(settings.tracing)
        projections = build_projections(
            registry,
            store_for(backend, settings.sqlite_projections_path, migrate=settings.migrate_on_start),
            apply=settings.projections_in_process,
            poll_interval=settings.poll_interval_seconds,
        )
        running = await start_server(
            registry,
            settings.listen_address,
            reuse_port=settings.reuse_port,
            stall_seconds=settings.subscriber_stall_seconds,
            projections=projections,
            metrics=server_metrics(settings),
            security=security,
            limits=settings.limits,
            tracing=tracing,
        )
    except BaseException:
        registry.close()
        if tracing is not None:
            tracing.shutdown()
        raise
    log.info(
        "server_started",
        address=settings.listen_address,
        port=running.port,
        **_store_description(settings),
        area_catalog=catalog.catalog_id,
        transport=exposure.transport,
        **({"plaintext_because": exposure.plaintext_reason} if exposure.plaintext_reason else {}),
        auth=settings.security.auth_mode,
        **encryption_description(settings.encryption),
        **settings.limits.describe(),
        process_index=settings.process_index,
        projections_applied=settings.projections_in_process,
        tracing=settings.tracing,
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


def open_backend(settings: Settings, *, migrate: bool | None = None) -> EventStoreBackend:
    """Open the configured event store, creating its tables when migrating (by default when
    INCIDENTS_MIGRATE_ON_START is on); otherwise fail with SchemaNotReadyError if missing."""
    create = settings.migrate_on_start if migrate is None else migrate
    if settings.store == "postgres":
        return PostgresEventStore(settings.postgres, create_schema=create)
    return SQLiteEventStore(
        settings.sqlite_path, synchronous=settings.sqlite_synchronous, create_schema=create
    )


def migrate(settings: Settings) -> None:
    """Create or upgrade every table: the event store's, then each read model's.

    Safe to run while servers run and from several processes at once: table creation is
    serialised by the databases' locks, and a read model whose version changed is rebuilt.
    """
    catalog = load_catalog(settings.area_catalog)
    backend = open_backend(settings, migrate=True)
    registry = Registry(
        backend,
        catalog,
        read_threads=1,
        wave_rule=settings.wave_rule,
        cipher=cipher_for(settings.encryption),
    )
    try:
        views = store_for(backend, settings.sqlite_projections_path, migrate=True)
        try:
            build_projections(registry, views, apply=False)
        finally:
            views.close()
    finally:
        registry.close()
    log.info("schema_migrated", **_store_description(settings))


def _store_description(settings: Settings) -> dict[str, str]:
    if settings.store == "postgres":
        pg = settings.postgres
        return {"store": "postgres", "postgres": f"{pg.user}@{pg.host}:{pg.port}/{pg.dbname}"}
    return {"store": "sqlite", "sqlite_path": str(settings.sqlite_path)}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="incident-registry-server",
        description="The incident registry's gRPC server, configured by INCIDENTS_* variables.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "migrate"),
        default="serve",
        help="serve (default): run the server; migrate: create or upgrade the tables and exit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m service` and `incident-registry-server`."""
    command = _parse_args(argv).command
    try:
        settings = Settings.from_env()
        if settings.server_processes > 1 and settings.listen_address.rsplit(":", 1)[-1] == "0":
            msg = "INCIDENTS_SERVER_PROCESSES above 1 needs a fixed port, not port 0"
            raise ConfigError(msg)
        security = None
        if command == "serve":
            # Refuse an unsafe exposure, and read every certificate, key and credentials
            # file now: a configuration error, before anything is opened.
            check_exposure(settings.listen_address, settings.security)
            security = build_server_security(settings.security)
    except (ConfigError, SecurityConfigError) as err:
        print(f"configuration error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        if command == "migrate":
            migrate(settings)
        elif settings.server_processes > 1:
            if settings.migrate_on_start:
                migrate(settings)
            return Supervisor(settings, os.environ).run()
        else:
            asyncio.run(serve(settings, security))
    except START_FAILURES as err:
        event = "migration_failed" if command == "migrate" else "server_failed_to_start"
        log.error(event, error=str(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
