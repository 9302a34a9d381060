"""The registry's projections, wired to its store: one list, used by servers and workers."""

from __future__ import annotations

from projections.assets_model import AssetRecoveryProjection
from projections.audit_model import AuditProjection
from projections.base import Projection
from projections.commands_model import CommandsProjection
from projections.incidents_model import IncidentsProjection
from projections.runner import ProjectionRunner
from projections.runtime import Projections
from projections.statistics_model import StatisticsProjection
from projections.store import ViewStore
from projections.waves_model import WavesProjection, blocking_recorder
from service.app.registry import Registry


def projection_list(registry: Registry) -> list[Projection]:
    """Every projection of the registry."""
    return [
        StatisticsProjection(registry.catalog),
        WavesProjection(registry.waves.rule, blocking_recorder(registry.waves)),
        CommandsProjection(),
        AssetRecoveryProjection(registry.catalog),
        IncidentsProjection(registry.catalog),
        AuditProjection(),
    ]


def build_projections(
    registry: Registry,
    store: ViewStore,
    *,
    apply: bool = True,
    poll_interval: float = 0.1,
    page_size: int = 500,
) -> Projections:
    """Runners for every projection on `store`, applying them here or only watching them."""
    runners = [
        ProjectionRunner(
            registry.backend,
            registry.mapper,
            store,
            projection,
            registry.watcher,
            apply=apply,
            poll_interval=poll_interval,
            page_size=page_size,
        )
        for projection in projection_list(registry)
    ]
    return Projections(registry.backend, registry.mapper, store, runners)
