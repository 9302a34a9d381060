"""Drives the application services synchronously on a temporary SQLite file (unit tests only)."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from service.app.commands import (
    RecordAssetSeizure,
    RegisterGang,
    ReportShooting,
    UnifyPoliceCommand,
)
from service.app.registry import Registry
from service.app.results import WriteContext, WriteResult
from service.areas import load_catalog
from service.domain.values import AssetItem, AssetKind, TimePrecision
from service.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator
    from pathlib import Path
    from uuid import UUID

    from service.store.base import EventStoreBackend

T = TypeVar("T")

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BRUSSELS = load_catalog("brussels")


class App:
    """A registry with a fixed clock, called synchronously, with shortcuts for preconditions."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.now = NOW

    @staticmethod
    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coroutine)

    def ctx(self, request_id: str = "", expected_version: int | None = None) -> WriteContext:
        """A write context; a fresh request id unless one is given."""
        return WriteContext(
            request_id=request_id or f"req-{uuid4().hex}",
            expected_version=expected_version,
            actor="analyst@example.org",
        )

    def head(self) -> int:
        return self.registry.backend.head()

    @staticmethod
    def shooting(**overrides: Any) -> ReportShooting:
        facts: dict[str, Any] = {
            "occurred_at": NOW - timedelta(hours=3),
            "occurred_at_precision": TimePrecision.MINUTE,
            "municipality_code": "21001",
        }
        return ReportShooting(**{**facts, **overrides})

    @staticmethod
    def seizure(**overrides: Any) -> RecordAssetSeizure:
        facts: dict[str, Any] = {
            "occurred_at": NOW - timedelta(days=1),
            "case_reference": "BR.12.34/24",
            "municipality_code": "21004",
            "items": (AssetItem(AssetKind.CASH, "banknotes", 10_000, 1, 0.0),),
        }
        return RecordAssetSeizure(**{**facts, **overrides})

    @staticmethod
    def unification(*codes: str, **overrides: Any) -> UnifyPoliceCommand:
        facts: dict[str, Any] = {
            "lead_authority": "Zone Midi",
            "reason": "wave of shootings",
            "municipality_codes": codes,
        }
        return UnifyPoliceCommand(**{**facts, **overrides})

    def report(self, **overrides: Any) -> UUID:
        """Report a shooting; return the incident id."""
        command = self.shooting(**overrides)
        return self.run(self.registry.incidents.report_shooting(command, self.ctx())).aggregate_id

    def gang(self, name: str = "Kings") -> UUID:
        """Register a gang; return its id."""
        command = RegisterGang(name=name)
        return self.run(self.registry.gangs.register(command, self.ctx())).aggregate_id

    def seize(self, **overrides: Any) -> WriteResult:
        command = self.seizure(**overrides)
        return self.run(self.registry.asset_cases.record_seizure(command, self.ctx()))

    def unify(self, *codes: str, **overrides: Any) -> WriteResult:
        command = self.unification(*codes, **overrides)
        return self.run(self.registry.police_commands.unify(command, self.ctx()))


@contextmanager
def registries(db_path: Path) -> Iterator[Callable[..., App]]:
    """Yield an opener of registries on `db_path` (or a given backend); close them all after."""
    opened: list[Registry] = []

    def open_app(backend: EventStoreBackend | None = None, **options: Any) -> App:
        store = backend or SQLiteEventStore(db_path)
        registry = Registry(store, BRUSSELS, clock=lambda: NOW, **options)
        opened.append(registry)
        return App(registry)

    try:
        yield open_app
    finally:
        for registry in opened:
            registry.close()
