"""Sampling the server process: /proc/<pid> and its sessions in pg_stat_activity.

A `Sampler` thread reads the server's /proc/<pid> every `interval` seconds: VmRSS, Threads,
the number of open fds and, on PostgreSQL, the server's sessions in pg_stat_activity (those
whose client port is a local port of one of the server's TCP sockets to PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable

import psycopg

from service.store.postgres import PostgresSettings
from tests.support.postgres import _conninfo
from tests.support.soak.judgement import Sample


def read_status(pid: int) -> tuple[int, int]:
    """VmRSS (kB) and Threads of a process, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return values["VmRSS"], values["Threads"]


def open_fds(pid: int) -> int:
    """The number of file descriptors a process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_inodes(pid: int) -> set[str]:
    """The inodes of a process's open sockets."""
    inodes: set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def local_ports_to(pid: int, remote_port: int) -> list[int]:
    """Local ports of the process's TCP sockets connected to `remote_port` (any address)."""
    inodes = socket_inodes(pid)
    ports: list[int] = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as rows:
            next(rows)  # the header
            for row in rows:
                columns = row.split()
                local, remote, inode = columns[1], columns[2], columns[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


class PgSessions:
    """Counts the server's sessions in pg_stat_activity, by their client ports."""

    def __init__(self, settings: PostgresSettings) -> None:
        self._port = settings.port
        self._conn = psycopg.connect(
            _conninfo(settings),
            autocommit=True,
            application_name="incident-registry soak sampler",
        )

    def count(self, pid: int) -> int:
        """Sessions whose client port is one of the server's local ports to PostgreSQL."""
        ports = local_ports_to(pid, self._port)
        row = self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(%s)", [ports]
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the sampler's own session."""
        self._conn.close()


class Sampler:
    """Samples the server every `interval` seconds in a thread until stopped."""

    def __init__(
        self,
        pid: int,
        interval: float,
        sessions: PgSessions | None,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> None:
        self.pid = pid
        self.interval = interval
        self.sessions = sessions
        self.on_sample = on_sample
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self, started: float) -> None:
        """Sample from now on, timing samples from `started` (time.monotonic)."""
        self._started = started
        self._thread.start()

    def stop(self) -> None:
        """Take no more samples (a sampler never started has nothing to stop)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def take(self) -> Sample:
        """Read the server's numbers now."""
        rss_kb, threads = read_status(self.pid)
        fds = open_fds(self.pid)
        connections = self.sessions.count(self.pid) if self.sessions is not None else None
        return Sample(time.monotonic() - self._started, rss_kb, threads, fds, connections)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sample = self.take()
            except (OSError, KeyError, psycopg.Error) as err:
                self.errors.append(f"sampling failed: {err!r}")
                return
            self.samples.append(sample)
            if self.on_sample is not None:
                self.on_sample(sample)
