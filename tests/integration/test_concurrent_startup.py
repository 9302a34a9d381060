"""Servers and projection workers that start together create their tables without failing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from projections.assembly import build_projections
from projections.store import postgres_store
from service.app.registry import Registry
from service.areas import load_catalog
from service.store.postgres import PostgresEventStore
from tests.support.postgres import fresh_schema

T = TypeVar("T")


def _all_at_once(count: int, open_one: Callable[[], T]) -> list[T]:
    barrier = threading.Barrier(count)
    opened: list[T] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(open_one())
        except BaseException as err:  # collected and reported below
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return opened


def test_event_stores_and_views_created_concurrently_on_a_fresh_schema(postgres):
    for _ in range(3):
        with fresh_schema(postgres) as settings:
            stores = _all_at_once(4, lambda s=settings: PostgresEventStore(s))
            registries = [Registry(store, load_catalog("brussels")) for store in stores]
            # Every projection installs its tables and state row at the same moment.
            views = _all_at_once(
                4,
                lambda s=settings, r=registries: build_projections(r[0], postgres_store(s)).store,
            )
            for view in views:
                view.close()
            for registry in registries:
                registry.close()
