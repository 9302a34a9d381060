"""Several server processes on one port: start them, restart any that dies, stop them together.

One Python process serves calls on about one CPU core. With INCIDENTS_SERVER_PROCESSES=N the
command starts N copies of itself, each listening on the same address with SO_REUSEPORT, so
the kernel spreads connections over them. Each child is an ordinary server process: it shares
the event store (and its locks) with the others exactly as separate replicas do. Only the first
child applies the projections in process (when that is on); the others serve the read models.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType

import structlog

from service.config import Settings

log = structlog.get_logger("service.supervisor")

RESTART_DELAY_SECONDS = 1.0
"""How long to wait before restarting a child that exited on its own."""
CRASH_WINDOW_SECONDS = 60.0
MAX_CRASHES_IN_WINDOW = 5
"""A child that exits this many times within the window makes the supervisor give up."""
POLL_SECONDS = 0.2


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    crashes: list[float] = field(default_factory=list)


def child_environment(settings: Settings, env: Mapping[str, str], index: int) -> dict[str, str]:
    """The environment of child `index`: one process, sharing the port, schema already there."""
    return {
        **env,
        "INCIDENTS_SERVER_PROCESSES": "1",
        "INCIDENTS_REUSE_PORT": "true",
        "INCIDENTS_PROCESS_INDEX": str(index),
        # The supervisor migrated once before starting the children (or was told not to).
        "INCIDENTS_MIGRATE_ON_START": "false",
        "INCIDENTS_PROJECTIONS_IN_PROCESS": str(settings.projections_in_process and index == 0),
    }


class Supervisor:
    """Runs `settings.server_processes` children of `python -m service` until told to stop."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self._settings = settings
        self._env = env
        self._children: list[_Child] = []
        self._stopping = False

    def run(self) -> int:
        """Start the children, watch them, and stop them all on SIGTERM or SIGINT.

        Returns 0 after a clean stop, 1 when a child kept failing (the others are stopped).
        """
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self._children = [
            _Child(index, self._spawn(index)) for index in range(self._settings.server_processes)
        ]
        log.info(
            "server_processes_started",
            address=self._settings.listen_address,
            pids=[child.process.pid for child in self._children],
        )
        status = 0
        while not self._stopping:
            time.sleep(POLL_SECONDS)
            for child in self._children:
                if self._stopping or child.process.poll() is None:
                    continue
                if not self._restart(child):
                    status = 1
                    self._stopping = True
                    break
        return self._stop_all() or status

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = child_environment(self._settings, self._env, index)
        return subprocess.Popen([sys.executable, "-m", "service"], env=env)

    def _restart(self, child: _Child) -> bool:
        """Restart a child that exited; False when it failed too often to go on."""
        now = time.monotonic()
        child.crashes = [t for t in child.crashes if now - t < CRASH_WINDOW_SECONDS] + [now]
        log.error(
            "server_process_exited",
            index=child.index,
            pid=child.process.pid,
            status=child.process.returncode,
            restarts_in_window=len(child.crashes),
        )
        if len(child.crashes) >= MAX_CRASHES_IN_WINDOW:
            log.error("server_process_failing", index=child.index, giving_up=True)
            return False
        deadline = now + RESTART_DELAY_SECONDS
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if not self._stopping:
            child.process = self._spawn(child.index)
            log.info("server_process_restarted", index=child.index, pid=child.process.pid)
        return True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("server_processes_stopping", signal=signal.Signals(signum).name)
        self._stopping = True

    def _stop_all(self) -> int:
        """SIGTERM every child, wait for them to drain, kill those that do not; 1 if any failed."""
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._settings.shutdown_grace_seconds + 5.0
        codes: list[int] = []
        for child in self._children:
            try:
                codes.append(child.process.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                child.process.kill()
                codes.append(child.process.wait())
        # A child still starting when told to stop dies of the signal itself: also clean.
        status = 0 if all(code in {0, -signal.SIGTERM} for code in codes) else 1
        log.info("server_processes_stopped", status=status, exit_codes=codes)
        return status
