"""A real registry server on 127.0.0.1:<free port>, running on its own event loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from eventsourcing.persistence import Cipher

from projections.assembly import build_projections
from projections.runtime import Projections
from projections.store import store_for
from service.api.server import RunningServer, start_server
from service.app.event_log import FollowSettings
from service.app.registry import Registry, utc_now
from service.areas import load_catalog
from service.domain.wave import WaveRule
from service.metrics import ServerMetrics
from service.security.auth import ServerSecurity
from service.security.limits import LimitSettings
from service.store.base import EventStoreBackend
from service.store.sqlite import SQLiteEventStore


class ServerHarness:
    """Starts and stops a registry server on an SQLite file, as often as a test needs.

    `backend_factory` opens another store instead (e.g. a PostgreSQL schema); two harnesses
    given the same one are two replicas of one registry. `cipher` encrypts event states at
    rest (service.store.cipher.KeyringCipher), as INCIDENTS_ENCRYPTION_KEY_FILE does.
    `security` serves with TLS credentials and a call guard (default: plaintext, no
    authentication). `limits` serve with INCIDENTS_LIMIT_* / INCIDENTS_MAX_* settings
    (default: none of the per-caller limits or call bound, requests up to 4 MiB).
    """

    def __init__(
        self,
        db_path: Path,
        *,
        catalog: str = "brussels",
        clock: Callable[[], datetime] = utc_now,
        backend_factory: Callable[[], EventStoreBackend] | None = None,
        wave_rule: WaveRule | None = None,
        poll_interval: float = 0.1,
        follow: FollowSettings | None = None,
        metrics: bool = False,
        cipher: Cipher | None = None,
        security: ServerSecurity | None = None,
        limits: LimitSettings | None = None,
    ) -> None:
        self.db_path = db_path
        self.backend_factory = backend_factory or (lambda: SQLiteEventStore(db_path))
        self.catalog = catalog
        self.clock = clock
        # Off unless a test asks: a wave would add WaveDetected events to other tests' logs.
        self.wave_rule = wave_rule
        # When asked, each start serves fresh metrics on 127.0.0.1:<free port>.
        self.with_metrics = metrics
        self.metrics: ServerMetrics | None = None
        # How often followers poll the head for other processes' commits, as
        # INCIDENTS_POLL_INTERVAL_SECONDS; and the subscriptions' tuning.
        self.poll_interval = poll_interval
        self.follow = follow
        self.cipher = cipher
        self.security = security
        self.limits = limits
        self.registry: Registry | None = None
        self._running: RunningServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        assert self._running is not None, "server not started"
        return self._running.port

    @property
    def metrics_url(self) -> str:
        """Where the running server's metrics are served (the harness was built with metrics)."""
        assert self.metrics is not None, "server not started with metrics"
        return f"http://127.0.0.1:{self.metrics.port}/metrics"

    @property
    def target(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServerHarness:
        """Open the store and start serving."""
        backend = self.backend_factory()
        catalog = load_catalog(self.catalog)
        # Raises (closing the store) when the log's last event cannot be decrypted.
        self.registry = Registry(
            backend,
            catalog,
            clock=self.clock,
            wave_rule=self.wave_rule,
            poll_interval=self.poll_interval,
            follow=self.follow,
            cipher=self.cipher,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.projections: Projections = build_projections(
            self.registry,
            store_for(backend, self.db_path.with_name(self.db_path.stem + "-projections.sqlite")),
            poll_interval=self.poll_interval,
        )
        self.metrics = ServerMetrics() if self.with_metrics else None
        self._running = self._call(
            start_server(
                self.registry,
                "127.0.0.1:0",
                projections=self.projections,
                metrics=self.metrics,
                security=self.security,
                limits=self.limits,
            )
        )
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Drain in-flight calls, stop serving and close the store."""
        if self._running is not None:
            self._call(self._running.stop(grace))
            self._running = None
        if self.registry is not None:
            self.registry.close()
            self.registry = None
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._loop = None

    def restart(self) -> ServerHarness:
        """Stop and start again on the same file."""
        self.stop()
        return self.start()

    def replica(self, **options: Any) -> ServerHarness:
        """Another server (not started) on the same store and catalog: a second replica.

        `options` are keyword arguments of ServerHarness, e.g. a `poll_interval`.
        """
        options.setdefault("cipher", self.cipher)
        return ServerHarness(
            self.db_path, catalog=self.catalog, backend_factory=self.backend_factory, **options
        )

    def channel(self) -> grpc.Channel:
        """A new client channel to the server."""
        return grpc.insecure_channel(self.target)

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)
