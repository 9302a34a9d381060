"""Metrics of the application: commands written, subscriptions, store pools and projections.

Counters are moved by the group-commit writer's observer; everything else is read when
Prometheus scrapes, so that nothing is computed while nobody looks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence

import structlog
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from projections.runtime import Projections, ProjectionStatus
from projections.store import FAULTED, PAUSED, RUNNING, ViewStore
from service.app.event_log import EventLog
from service.domain.errors import VersionConflictError
from service.domain.events import TOPICS_BY_EVENT_TYPE
from service.store.base import EventStoreBackend
from service.store.postgres import PostgresEventStore

log = structlog.get_logger(__name__)

PROJECTION_STATES = (RUNNING, PAUSED, FAULTED)
"""The states a projection can be in, each a value of the `state` label."""
SCRAPE_TIMEOUT_SECONDS = 5.0
"""How long a scrape waits for the projections' state before leaving it out."""

PoolStats = Callable[[], Mapping[str, int] | None]
"""A pool's statistics now (psycopg_pool's `get_stats`), None when there is no pool to read."""

_EVENT_TYPE_OF_TOPIC = {topic: name for name, topic in TOPICS_BY_EVENT_TYPE.items()}


def event_type_of(topic: str) -> str:
    """The event type name (e.g. ShootingReported) of a stored topic."""
    return _EVENT_TYPE_OF_TOPIC.get(topic) or topic.rpartition(".")[2]


class WriteCounters:
    """Counts what the group-commit writer's commands came to (a WriteObserver)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "incidents_events_appended",
            "Events appended to the log by commands, by event type.",
            ["type"],
            registry=registry,
        )
        self.replays = Counter(
            "incidents_idempotent_replays",
            "Commands answered from the record of their request id, without writing.",
            registry=registry,
        )
        self.conflicts = Counter(
            "incidents_version_conflicts",
            "Commands refused because the expected version was not the current one.",
            registry=registry,
        )
        self._by_topic: dict[str, Counter] = {}

    def appended(self, topics: Sequence[str]) -> None:
        """Count the events of one committed command."""
        for topic in topics:
            counter = self._by_topic.get(topic)
            if counter is None:
                counter = self._by_topic[topic] = self.events.labels(event_type_of(topic))
            counter.inc()

    def replayed(self) -> None:
        """Count an idempotent replay."""
        self.replays.inc()

    def rejected(self, error: BaseException) -> None:
        """Count a version conflict; other refusals show in the RPC status counts."""
        if isinstance(error, VersionConflictError):
            self.conflicts.inc()


class SubscriptionCollector(Collector):
    """The number of live Subscribe streams, read at scrape time."""

    def __init__(self, event_log: EventLog) -> None:
        self._event_log = event_log

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family this collector yields."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The current count."""
        family = self._family()
        family.add_metric([], self._event_log.subscribers)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "incidents_subscriptions_active", "Subscribe streams open on this process."
        )


def store_pools(backend: EventStoreBackend, views: ViewStore | None = None) -> dict[str, PoolStats]:
    """The connection pools of an event store and of its view store, by name.

    `events` is the event store's pool, `views` the read models' pool; SQLite has neither.
    """
    pools: dict[str, PoolStats] = {}
    if isinstance(backend, PostgresEventStore):
        pools["events"] = backend.datastore.pool.get_stats
    if views is not None and views.pool_stats() is not None:
        pools["views"] = views.pool_stats
    return pools


class PoolCollector(Collector):
    """Usage of connection pools (psycopg_pool statistics), read at scrape time."""

    def __init__(self, pools: Mapping[str, PoolStats]) -> None:
        self._pools = dict(pools)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families this collector yields."""
        yield from self._families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Connections in use, open, allowed, and requests waiting, per pool."""
        families = self._families()
        for name, stats_of in self._pools.items():
            stats = stats_of()
            if stats is None:
                continue
            size = stats.get("pool_size", 0)
            families["in_use"].add_metric([name], size - stats.get("pool_available", 0))
            families["open"].add_metric([name], size)
            families["max"].add_metric([name], stats.get("pool_max", 0))
            families["waiting"].add_metric([name], stats.get("requests_waiting", 0))
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        labels = ["pool"]
        return {
            "in_use": GaugeMetricFamily(
                "incidents_store_pool_connections_in_use",
                "Connections lent out by the pool now.",
                labels=labels,
            ),
            "open": GaugeMetricFamily(
                "incidents_store_pool_connections",
                "Connections the pool holds open now (in use or idle).",
                labels=labels,
            ),
            "max": GaugeMetricFamily(
                "incidents_store_pool_max_connections",
                "The most connections the pool may open.",
                labels=labels,
            ),
            "waiting": GaugeMetricFamily(
                "incidents_store_pool_requests_waiting",
                "Requests waiting for a connection now.",
                labels=labels,
            ),
        }


class ProjectionCollector(Collector):
    """Each projection's position, lag and state, read at scrape time.

    The state is read with `Projections.statuses()` on the event loop that owns the
    projections (the scrape runs on the HTTP server's thread); a scrape that cannot have it
    within SCRAPE_TIMEOUT_SECONDS leaves these samples out.
    """

    def __init__(self, projections: Projections, loop: asyncio.AbstractEventLoop) -> None:
        self._projections = projections
        self._loop = loop

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families this collector yields."""
        yield from self._families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per projection (and per state for the state gauge)."""
        families = self._families()
        for status in self._statuses():
            name = [status.name]
            families["position"].add_metric(name, status.position)
            families["lag_events"].add_metric(name, status.lag_events)
            families["lag_seconds"].add_metric(name, status.lag_seconds)
            for state in PROJECTION_STATES:
                families["state"].add_metric([status.name, state], int(status.status == state))
        yield from families.values()

    def _statuses(self) -> list[ProjectionStatus]:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            # Waiting here for the loop would block the loop itself.
            log.warning("projection_metrics_skipped", reason="collected on the event loop")
            return []
        statuses = self._projections.statuses()
        try:
            future = asyncio.run_coroutine_threadsafe(statuses, self._loop)
        except RuntimeError:  # the loop is closed: the process is stopping
            statuses.close()
            return []
        try:
            return future.result(SCRAPE_TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()
            log.warning("projection_metrics_skipped", reason="timed out")
        except Exception as err:  # e.g. the store is unavailable: leave the samples out
            log.warning("projection_metrics_skipped", reason=str(err))
        return []

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        labels = ["projection"]
        return {
            "position": GaugeMetricFamily(
                "incidents_projection_position",
                "The log position the projection's read model reflects.",
                labels=labels,
            ),
            "lag_events": GaugeMetricFamily(
                "incidents_projection_lag_events",
                "Log positions between the head of the log and the projection's position.",
                labels=labels,
            ),
            "lag_seconds": GaugeMetricFamily(
                "incidents_projection_lag_seconds",
                "Age of the oldest event the projection has not applied yet (0 when caught up).",
                labels=labels,
            ),
            "state": GaugeMetricFamily(
                "incidents_projection_state",
                "1 for the state the projection is in (running, paused, faulted), else 0.",
                labels=[*labels, "state"],
            ),
        }
