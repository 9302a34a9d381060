"""The soak's server: `python -m service` in its own process, started and stopped.

The process is started, awaited and stopped with the benchmarks' helpers (benchmarks/servers.py,
imported by bare name as the benchmark scripts import it); its output goes to
`workdir/server.log`. On PostgreSQL it is pointed at the run's schema with the variables of
tests/e2e/test_server_processes.py.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.e2e.test_server_processes import postgres_env
from tests.support.soak.settings import SoakSettings

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))

import servers  # noqa: E402 - benchmarks/ is not a package: its scripts import it by bare name
from servers import ServerProcess  # noqa: E402

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 30

__all__ = ["LOG_TAIL_LINES", "ServerProcess", "start_server", "stop_server"]


def server_environment(settings: SoakSettings) -> dict[str, str]:
    """The variables the run adds to `python -m service`'s environment for its store."""
    env = {
        "INCIDENTS_SHUTDOWN_GRACE_SECONDS": "2",
        "INCIDENTS_SQLITE_PROJECTIONS_PATH": str(settings.workdir / "projections.sqlite"),
    }
    if settings.store == "postgres":
        if settings.postgres is None:
            msg = "a PostgreSQL soak needs PostgreSQL settings"
            raise ValueError(msg)
        env.update(postgres_env(settings.postgres))
    return env


def start_server(settings: SoakSettings) -> ServerProcess:
    """Start the server on a free port; its output goes to `workdir/server.log`."""
    (port,) = servers.free_ports(1)
    return servers.start_registry(
        settings.workdir,
        port,
        sqlite_path=settings.workdir / "registry.sqlite",
        extra_env=server_environment(settings),
        name="server",
        stop_timeout=STOP_TIMEOUT,
    )


def wait_serving(server: ServerProcess, timeout: float = STARTUP_TIMEOUT) -> None:
    """Return once the health service answers SERVING; raise if it never does."""
    asyncio.run(servers.wait_serving(server, server.target, timeout, service=""))


def stop_server(server: ServerProcess) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit; return its exit status."""
    server.stop()
    return server.process.returncode
