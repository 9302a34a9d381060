"""Build read models outside a server: clean rebuilds to compare live models with."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from projections.assembly import projection_list
from projections.base import Projection
from projections.runner import ProjectionRunner
from projections.statistics import AREA_KINDS, PERIOD_KINDS
from projections.statistics_model import query_statistics
from projections.store import ViewStore, sqlite_store, store_for
from service.app.head_watcher import HeadWatcher
from service.app.registry import Registry
from service.store.base import EventStoreBackend
from service.store.transcoding import RegistryMapper


def runner_for(
    backend: EventStoreBackend,
    mapper: RegistryMapper,
    store: ViewStore,
    projection: Projection,
    *,
    page_size: int = 500,
) -> ProjectionRunner:
    """A runner that is driven page by page with `process_page` (never started)."""
    watcher = HeadWatcher(backend, ThreadPoolExecutor(max_workers=1), poll_interval=0.1)
    return ProjectionRunner(backend, mapper, store, projection, watcher, page_size=page_size)


def run_to_head(runner: ProjectionRunner) -> tuple[int, int]:
    """Apply pages until the head of the log; return (position, pages applied)."""
    position = runner.store.state(runner.name).position
    pages = 0
    while True:
        reached, head = runner.process_page(position)
        if reached != position:
            pages += 1
        position = reached
        if position >= head:
            return position, pages


def rebuild(
    backend: EventStoreBackend,
    mapper: RegistryMapper,
    projection: Projection,
    path: Path,
    *,
    page_size: int = 500,
) -> ViewStore:
    """A fresh SQLite view store at `path` with `projection` rebuilt from the whole log."""
    store = sqlite_store(path)
    run_to_head(runner_for(backend, mapper, store, projection, page_size=page_size))
    return store


StatisticsTable = dict[tuple[str, str], list[tuple[str, str, int, int, int]]]


def statistics_table(store: ViewStore) -> StatisticsTable:
    """Every statistics row, by (area kind, period kind), as plain tuples."""
    with store.transaction(write=False) as tx:
        return {
            (area_kind, period_kind): [
                (r.area_code, r.period, r.incidents, r.killed, r.injured)
                for r in query_statistics(tx, area_kind, [], period_kind)
            ]
            for area_kind in AREA_KINDS
            for period_kind in PERIOD_KINDS
        }


ModelDump = dict[str, dict[str, list[tuple[Any, ...]]]]


def dump_models(store: ViewStore, projections: list[Projection]) -> ModelDump:
    """Every row of every projection's tables, sorted: two equal dumps are equal models."""
    with store.transaction(write=False) as tx:
        return {
            projection.name: {
                table: sorted(
                    (tuple(row) for row in tx.fetchall(f"SELECT * FROM {table}")),
                    key=repr,
                )
                for table in projection.tables
            }
            for projection in projections
        }


def rebuild_all(registry: Registry, path: Path) -> ModelDump:
    """Rebuild every projection of `registry` from its whole log into a fresh SQLite file."""
    store = sqlite_store(path)
    try:
        projections = projection_list(registry)
        for projection in projections:
            run_to_head(runner_for(registry.backend, registry.mapper, store, projection))
        return dump_models(store, projections)
    finally:
        store.close()


def live_models(registry: Registry, path: Path) -> ModelDump:
    """Every projection's rows as a server or worker process left them: in the SQLite view
    file at `path`, or in the registry's PostgreSQL schema."""
    store = store_for(registry.backend, path)
    try:
        return dump_models(store, projection_list(registry))
    finally:
        store.close()
