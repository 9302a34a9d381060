"""CPU time used by processes, read from /proc: where a benchmark's cores went.

Shared by the benchmarks (run as scripts, so imported as `cpu`). Linux only: on other systems
every reading is 0.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    name_end = text.rindex(")")
    pid_part, name = text[: text.index("(")].strip(), text[text.index("(") + 1 : name_end]
    return [pid_part, name, *text[name_end + 2 :].split()]


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it."""
    parents: dict[int, int] = {}
    for pid in _all_pids():
        fields = _stat(pid)
        if fields is not None:
            parents[pid] = int(fields[3])
    tree = {root}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sorted(tree)


def named(name: str) -> list[int]:
    """Every process whose command name is `name` (e.g. the PostgreSQL server's)."""
    found = []
    for pid in _all_pids():
        fields = _stat(pid)
        if fields is not None and fields[1] == name:
            found.append(pid)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds used so far by the processes (all their threads)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[13]) + int(fields[14])
    return total / TICKS


@dataclass(frozen=True)
class CpuReading:
    """CPU seconds used so far by the server, by this client and by PostgreSQL, at `at`."""

    at: float
    server: float
    client: float
    postgres: float

    def minus(self, earlier: CpuReading) -> CpuReading:
        """The CPU used between `earlier` and this reading."""
        return CpuReading(
            self.at - earlier.at,
            self.server - earlier.server,
            self.client - earlier.client,
            self.postgres - earlier.postgres,
        )


def read_cpu(server_pid: int) -> CpuReading:
    """Read the CPU used by the server's process tree, this process and PostgreSQL's."""
    return CpuReading(
        at=time.perf_counter(),
        server=cpu_seconds(process_tree(server_pid)),
        client=time.process_time(),
        postgres=cpu_seconds(named("postgres")),
    )
