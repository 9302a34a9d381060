"""Several server processes on one port, and the schema created by `migrate` before any server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from incident_registry_client.proto.incidents.v1 import (
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    gang_service_pb2,
    gang_service_pb2_grpc,
)

from service.store.postgres import PostgresSettings
from tests.e2e.test_server_process import ROOT, free_port, wait_serving
from tests.support.postgres import fresh_schema

WRITERS = 8
WRITES_PER_WRITER = 15


def postgres_env(pg: PostgresSettings) -> dict[str, str]:
    """The variables that point a process at a PostgreSQL schema."""
    return {
        "INCIDENTS_STORE": "postgres",
        "INCIDENTS_POSTGRES_HOST": pg.host,
        "INCIDENTS_POSTGRES_PORT": str(pg.port),
        "INCIDENTS_POSTGRES_DB": pg.dbname,
        "INCIDENTS_POSTGRES_USER": pg.user,
        "INCIDENTS_POSTGRES_PASSWORD": pg.password,
        "INCIDENTS_POSTGRES_SCHEMA": pg.schema,
    }


class Launcher:
    """Starts `python -m service` processes with a common environment; kills leftovers."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[str]] = []

    def run(
        self, *args: str, module: str = "service", **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of the server (or of another module) to its end."""
        return subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=self._env(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self, **env: str) -> tuple[subprocess.Popen[str], str]:
        """Start a server on a free port; return it and its address."""
        target = f"127.0.0.1:{free_port()}"
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=self._env({"INCIDENTS_LISTEN_ADDRESS": target, **env}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, so that leftovers (children included) can be killed.
            start_new_session=True,
        )
        self.processes.append(process)
        return process, target

    def _env(self, env: dict[str, str]) -> dict[str, str]:
        return {
            **os.environ,
            "INCIDENTS_SQLITE_PATH": str(self.tmp_path / "registry.sqlite"),
            "INCIDENTS_LOG_FORMAT": "json",
            "INCIDENTS_SHUTDOWN_GRACE_SECONDS": "2",
            **env,
        }

    def kill_all(self) -> None:
        """Kill every process group still running."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launched = Launcher(tmp_path)
    yield launched
    launched.kill_all()


def log_events(output: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process's output."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def register_gangs(target: str, prefix: str) -> list[gang_service_pb2.RegisterGangResponse]:
    """Register gangs from several threads, each on its own connection; return the replies."""

    def writer(number: int) -> list[gang_service_pb2.RegisterGangResponse]:
        # A connection of its own, so that SO_REUSEPORT can hand it to either process.
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(target, options=options) as channel:
            gangs = gang_service_pb2_grpc.GangServiceStub(channel)
            return [
                gangs.RegisterGang(
                    gang_service_pb2.RegisterGangRequest(
                        request_id=f"{prefix}-{number}-{i}", name=f"Clan {prefix} {number}-{i}"
                    ),
                    timeout=10,
                )
                for i in range(WRITES_PER_WRITER)
            ]

    with ThreadPoolExecutor(WRITERS) as pool:
        return [reply for replies in pool.map(writer, range(WRITERS)) for reply in replies]


def head(target: str) -> int:
    """The log's head position, as the server reports it."""
    with grpc.insecure_channel(target) as channel:
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        return int(log.GetHead(event_log_service_pb2.GetHeadRequest(), timeout=5).position)


def wait_for_event(process: subprocess.Popen[str], lines: list[str], event: str) -> dict[str, Any]:
    """Read the process's output until a log line with `event`; return it."""
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("{") and json.loads(line)["event"] == event:
            return dict(json.loads(line))
    raise AssertionError(f"no {event} in the output:\n{''.join(lines)}")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_processes_share_one_port_survive_a_crash_and_stop_together(launcher, store, request):
    env = {"INCIDENTS_SERVER_PROCESSES": "2"}
    with contextlib.ExitStack() as stack:
        if store == "postgres":
            env |= postgres_env(
                stack.enter_context(fresh_schema(request.getfixturevalue("postgres")))
            )
            # The processes go before their schema is dropped, even when the test fails.
            stack.callback(launcher.kill_all)
        process, target = launcher.start(**env)
        lines: list[str] = []
        started = wait_for_event(process, lines, "server_processes_started")
        children = started["pids"]
        assert len(children) == 2
        wait_serving(target)

        replies = register_gangs(target, "before")
        # A child that dies is replaced, and the port keeps serving meanwhile.
        os.kill(children[1], signal.SIGKILL)
        restarted = wait_for_event(process, lines, "server_process_restarted")
        assert restarted["index"] == 1
        assert restarted["pid"] not in children
        assert wait_for_event(process, lines, "server_started")["process_index"] == 1
        replies += register_gangs(target, "after")

        # Every acknowledged write is in the log once, at the position it was given.
        positions = sorted(reply.result.position for reply in replies)
        assert positions == list(range(1, WRITERS * WRITES_PER_WRITER * 2 + 1))
        assert head(target) == len(positions)

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        lines.append(output)
        assert process.returncode == 0, "".join(lines)
        stopped = [e for e in log_events("".join(lines)) if e["event"] == "server_stopped"]
        assert len(stopped) == 2
        for pid in [*children, restarted["pid"]]:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_several_processes_need_a_fixed_port(launcher):
    done = launcher.run(INCIDENTS_SERVER_PROCESSES="2", INCIDENTS_LISTEN_ADDRESS="127.0.0.1:0")
    assert done.returncode == 2
    assert "needs a fixed port" in done.stderr


def tables_in(pg: PostgresSettings) -> set[str]:
    """The tables in the schema."""
    with psycopg.connect(
        host=pg.host, port=pg.port, dbname=pg.dbname, user=pg.user, password=pg.password
    ) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [pg.schema],
        ).fetchall()
    return {row[0] for row in rows}


def test_migrate_creates_every_table_and_servers_can_then_start_without_ddl(launcher, postgres):
    with fresh_schema(postgres) as pg, contextlib.ExitStack() as stack:
        stack.callback(launcher.kill_all)
        env = postgres_env(pg) | {"INCIDENTS_MIGRATE_ON_START": "false"}
        # Without the tables, a server that may not create them refuses to start, saying why.
        process, _ = launcher.start(**env)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 1
        failure = next(e for e in log_events(output) if e["event"] == "server_failed_to_start")
        assert "incident-registry-server migrate" in failure["error"]
        # Nor does a projection worker.
        worker = launcher.run(module="projections", **env)
        assert worker.returncode == 1
        assert "incident-registry-server migrate" in worker.stdout + worker.stderr
        assert tables_in(pg) == set()

        done = launcher.run("migrate", **env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert any(e["event"] == "schema_migrated" for e in log_events(done.stdout))
        tables = tables_in(pg)
        assert {
            "stored_events",
            "accepted_requests",
            "event_tags",
            "subject_keys",
            "projection_state",
        } <= tables
        assert {"proj_statistics", "proj_incidents"} <= tables
        # Running it again changes nothing and succeeds.
        assert launcher.run("migrate", **env).returncode == 0

        process, target = launcher.start(**env)
        wait_serving(target)
        assert len(register_gangs(target, "migrated")) == WRITERS * WRITES_PER_WRITER
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_a_server_without_ddl_refuses_an_sqlite_file_that_was_never_migrated(launcher, tmp_path):
    process, _ = launcher.start(INCIDENTS_MIGRATE_ON_START="false")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "incident-registry-server migrate" in output

    assert launcher.run("migrate").returncode == 0
    process, target = launcher.start(INCIDENTS_MIGRATE_ON_START="false")
    wait_serving(target)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
