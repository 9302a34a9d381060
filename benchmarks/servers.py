"""Server processes for the benchmarks: start, wait until ready, read the log, stop.

Shared by benchmarks/append.py and benchmarks/subscribe.py. They run as scripts
(`python benchmarks/append.py`), so benchmarks/ is on sys.path and they import this module
as `servers`.

Every server is a separate OS process whose stdout and stderr go to a log file in the
benchmark's temporary directory; `start_registry` starts the real registry (`python -m
service`) on a SQLite file, listening on 127.0.0.1 with JSON logs and a 1 s shutdown grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import grpc
import psycopg
import psycopg.sql
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from incident_registry_client.proto.incidents.v1 import incident_pb2, incident_service_pb2

ROOT = Path(__file__).resolve().parent.parent
SQLITE_NAME = "bench.sqlite"  # the registry's SQLite file in the work directory, by default
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class ServerStartError(RuntimeError):
    """A server process exited, did not become ready in time, or answered wrongly."""


@dataclass
class ServerProcess:
    """A started server process, the address it listens on and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path
    log_file: IO[bytes]
    label: str = "server"  # how error messages name the server
    stop_timeout: float = STOP_TIMEOUT_S

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines the server wrote."""
        self.log_file.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise ServerStartError when the process has exited."""
        code = self.process.poll()
        if code is not None:
            msg = f"{self.label} exited with status {code}:\n{self.log_tail()}"
            raise ServerStartError(msg)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after a grace period)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(self.stop_timeout)
        self.log_file.close()


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports on 127.0.0.1 that are free right now."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def spawn(
    name: str,
    argv: list[str],
    env: Mapping[str, str],
    workdir: Path,
    *,
    target: str,
    label: str = "server",
    stop_timeout: float = STOP_TIMEOUT_S,
) -> ServerProcess:
    """Start `argv` in the project root as a process whose output goes to `workdir/name.log`."""
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
    )
    return ServerProcess(name, process, target, log_path, log_file, label, stop_timeout)


def start_registry(
    workdir: Path,
    port: int,
    *,
    sqlite_path: Path | None = None,
    log_level: str = "warning",
    extra_env: Mapping[str, str] | None = None,
    name: str = "registry",
    label: str = "server",
    stop_timeout: float = STOP_TIMEOUT_S,
) -> ServerProcess:
    """Start `python -m service` on 127.0.0.1:`port` and `sqlite_path` (default in `workdir`)."""
    env = {
        **os.environ,
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_SQLITE_PATH": str(sqlite_path or workdir / SQLITE_NAME),
        "INCIDENTS_LOG_LEVEL": log_level,
        "INCIDENTS_LOG_FORMAT": "json",
        "INCIDENTS_SHUTDOWN_GRACE_SECONDS": "1",
        **(extra_env or {}),
    }
    argv = [sys.executable, "-m", "service"]
    return spawn(
        name,
        argv,
        env,
        workdir,
        target=f"127.0.0.1:{port}",
        label=label,
        stop_timeout=stop_timeout,
    )


async def wait_serving(
    server: ServerProcess,
    target: str,
    timeout: float = STARTUP_TIMEOUT_S,
    *,
    service: str,
    label: str | None = None,
) -> None:
    """Poll the health service at `target` until `service` is SERVING.

    Raise ServerStartError when the process exits first or `timeout` seconds pass; the
    message names the server by `label` (default: the server's own label).
    """
    deadline = time.monotonic() + timeout
    request = health_pb2.HealthCheckRequest(service=service)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            server.check_alive()
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(request, timeout=1.0)  # type: ignore[attr-defined]
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    server.check_alive()
    name = label or server.label
    msg = f"{name} not SERVING after {timeout:.0f} s:\n{server.log_tail()}"
    raise ServerStartError(msg)


def postgres_conninfo() -> str:
    """The connection string of the PostgreSQL server the registry would use:
    INCIDENTS_POSTGRES_HOST/PORT/DB/USER/PASSWORD (default 127.0.0.1:5432, database and user
    postgres)."""
    return psycopg.conninfo.make_conninfo(
        host=os.environ.get("INCIDENTS_POSTGRES_HOST", "127.0.0.1"),
        port=os.environ.get("INCIDENTS_POSTGRES_PORT", "5432"),
        dbname=os.environ.get("INCIDENTS_POSTGRES_DB", "postgres"),
        user=os.environ.get("INCIDENTS_POSTGRES_USER", "postgres"),
        password=os.environ.get("INCIDENTS_POSTGRES_PASSWORD", ""),
        connect_timeout=5,
    )


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """Create an empty PostgreSQL schema for one benchmark run and drop it afterwards.

    The server is the one the registry would use: INCIDENTS_POSTGRES_HOST/PORT/DB/USER/PASSWORD
    (default 127.0.0.1:5432, database and user postgres).
    """
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conninfo = postgres_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE SCHEMA {0}").format(psycopg.sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP SCHEMA {0} CASCADE").format(psycopg.sql.Identifier(schema))
            )


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a benchmark's results document (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def shooting_request(request_id: str = "") -> incident_service_pb2.ReportShootingRequest:
    """A valid ReportShooting request: shots fired an hour ago in Brussels, one injured."""
    occurred = Timestamp()
    occurred.FromDatetime(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    return incident_service_pb2.ReportShootingRequest(
        request_id=request_id,
        occurred_at=occurred,
        occurred_at_precision=incident_pb2.TIME_PRECISION_MINUTE,
        municipality_code="21001",
        address="Rue de la Loi 16",
        weapons=[incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=1)],
        assailant_count=2,
        injured=1,
        description="Benchmark: shots fired from a passing car, one person injured.",
    )
