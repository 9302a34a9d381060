"""Whether a soak run's resource samples grew: memory, threads, open files, PG connections.

A run is sampled every ~0.5-1 s (`Sample`). The first `warmup_seconds` are discarded: the
first requests fill caches, grow the read and executor thread pools to their working size,
open pooled connections and page in the SQLite files, so early growth says nothing about a
leak. The next `baseline_fraction` of what remains is the *baseline*; everything after it
is judged against it:

- **threads, open fds, PostgreSQL connections** must never exceed the baseline's maximum plus
  a small allowance (`thread_allowance`, `fd_allowance`, `connection_allowance`). These are
  counts of things the server holds: a leak of one per request, per stream or per minute
  passes the baseline maximum within seconds, while a healthy server under steady load
  stays inside the set it reached after warm-up. The allowances absorb a pool that grows by
  one late (an executor thread first needed by a rare call, an overflow connection under a
  burst, the fd of a socket accepted while another closes).
- **memory (VmRSS)** moves in steps (allocator arenas, SQLite page caches, gRPC buffers), so
  it is judged on two robust statistics, each bounded by `rss_tolerance_mb(baseline)` =
  max(`rss_tolerance_fraction` * baseline median, `rss_tolerance_floor_mb`):
  the median of the last `tail_fraction` of the samples against the baseline median (growth
  that happened), and the least-squares slope over the second half of the judged samples
  multiplied by the judged span (growth that is still going on at the end, extrapolated
  over as long again as the run was judged).

The defaults come from measured runs (README "Soak test"; 2 CPUs, shared with other jobs).
After warm-up the server's threads, fds and PostgreSQL sessions did not move at all, except
one thread added once (SQLite 24 -> 25 after 4 minutes; PostgreSQL 32 -> 33 at about 30 s):
hence allowances of 2 threads, 6 fds and 1 connection. RSS rose by 1-2 MB in a 75 s run
(noise of about +-1 MB between samples) and by 4 MB (SQLite) and 1 MB (PostgreSQL) over
four judged minutes of a 5-minute run. The 16 MB floor is several times the growth seen in
the CI's window; with 15 s of warm-up and 75 s of load the median comparison spans about
48 s, so a leak of about 20 MB a minute or more fails the CI test, and a 30-minute soak
(60 s warm-up) fails from about 0.7 MB a minute.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIB = 1024.0


@dataclass(frozen=True)
class Sample:
    """One reading of the server process, `t` seconds after the load started."""

    t: float
    rss_kb: int
    threads: int
    fds: int
    pg_connections: int | None = None

    @property
    def rss_mb(self) -> float:
        """VmRSS in MiB."""
        return self.rss_kb / MIB


@dataclass(frozen=True)
class Limits:
    """How a run is split into warm-up, baseline and judged samples, and what growth is allowed.

    See the module docstring for the reasoning behind each default.
    """

    warmup_seconds: float = 15.0
    baseline_fraction: float = 0.25
    tail_fraction: float = 0.2
    thread_allowance: int = 2
    fd_allowance: int = 6
    connection_allowance: int = 1
    rss_tolerance_fraction: float = 0.10
    rss_tolerance_floor_mb: float = 16.0
    min_baseline_samples: int = 5
    min_judged_samples: int = 10

    def rss_tolerance_mb(self, baseline_median_mb: float) -> float:
        """The RSS growth allowed over a baseline whose median is `baseline_median_mb`."""
        return max(self.rss_tolerance_fraction * baseline_median_mb, self.rss_tolerance_floor_mb)


@dataclass(frozen=True)
class Window:
    """Summary statistics of the samples in one window of the run."""

    samples: int
    start: float
    end: float
    rss_median_mb: float
    rss_max_mb: float
    threads_max: int
    fds_max: int
    pg_connections_max: int | None


@dataclass(frozen=True)
class Verdict:
    """The judgement of one run: whether it grew, why, and the numbers behind it."""

    grew: bool
    findings: list[str]
    baseline: Window | None
    judged: Window | None
    tail: Window | None
    rss_slope_mb_per_min: float = 0.0
    rss_projected_growth_mb: float = 0.0
    rss_tolerance_mb: float = 0.0

    def describe(self) -> str:
        """A human-readable summary, one line per fact."""
        lines = ["GREW" if self.grew else "no growth"]
        for name, window in (("baseline", self.baseline), ("judged", self.judged)):
            if window is not None:
                lines.append(f"{name}: {describe_window(window)}")
        if self.tail is not None:
            lines.append(f"tail: {describe_window(self.tail)}")
        lines.append(
            f"rss slope {self.rss_slope_mb_per_min:+.2f} MB/min, projected growth "
            f"{self.rss_projected_growth_mb:+.1f} MB, tolerance {self.rss_tolerance_mb:.1f} MB"
        )
        lines.extend(f"finding: {finding}" for finding in self.findings)
        return "\n".join(lines)


def describe_window(window: Window) -> str:
    """One line for a window's statistics."""
    pg = (
        ""
        if window.pg_connections_max is None
        else f", pg connections max {window.pg_connections_max}"
    )
    return (
        f"{window.samples} samples {window.start:.0f}-{window.end:.0f} s, rss median "
        f"{window.rss_median_mb:.1f} MB (max {window.rss_max_mb:.1f}), threads max "
        f"{window.threads_max}, fds max {window.fds_max}{pg}"
    )


def summarize(samples: Sequence[Sample]) -> Window:
    """The statistics of a non-empty window of samples."""
    connections = [s.pg_connections for s in samples if s.pg_connections is not None]
    return Window(
        samples=len(samples),
        start=samples[0].t,
        end=samples[-1].t,
        rss_median_mb=statistics.median(s.rss_mb for s in samples),
        rss_max_mb=max(s.rss_mb for s in samples),
        threads_max=max(s.threads for s in samples),
        fds_max=max(s.fds for s in samples),
        pg_connections_max=max(connections) if connections else None,
    )


def slope_per_second(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (x, y) points (0 for fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def split(samples: Sequence[Sample], limits: Limits) -> tuple[list[Sample], list[Sample]]:
    """The baseline and the judged samples, after the warm-up is discarded."""
    settled = [s for s in samples if s.t >= limits.warmup_seconds]
    count = max(limits.min_baseline_samples, round(len(settled) * limits.baseline_fraction))
    return settled[:count], settled[count:]


def _count_findings(baseline: Window, judged: Sequence[Sample], limits: Limits) -> list[str]:
    findings: list[str] = []
    checks: list[tuple[str, int, int, list[tuple[float, int]]]] = [
        (
            "threads",
            baseline.threads_max,
            limits.thread_allowance,
            [(s.t, s.threads) for s in judged],
        ),
        ("open fds", baseline.fds_max, limits.fd_allowance, [(s.t, s.fds) for s in judged]),
    ]
    if baseline.pg_connections_max is not None:
        connections = [(s.t, s.pg_connections) for s in judged if s.pg_connections is not None]
        checks.append(
            (
                "PostgreSQL connections",
                baseline.pg_connections_max,
                limits.connection_allowance,
                connections,
            )
        )
    for name, ceiling, allowance, series in checks:
        over = [(t, value) for t, value in series if value > ceiling + allowance]
        if over:
            t, value = max(over, key=lambda point: point[1])
            findings.append(
                f"{name} reached {value} at {t:.0f} s, over the baseline maximum {ceiling} "
                f"+ {allowance} ({len(over)} samples over)"
            )
    return findings


def _rss_findings(
    baseline: Window, tail: Window, slope_mb_s: float, span: float, tolerance: float
) -> list[str]:
    findings: list[str] = []
    grown = tail.rss_median_mb - baseline.rss_median_mb
    if grown > tolerance:
        findings.append(
            f"RSS median grew {grown:.1f} MB ({baseline.rss_median_mb:.1f} -> "
            f"{tail.rss_median_mb:.1f} MB), over the tolerance {tolerance:.1f} MB"
        )
    projected = slope_mb_s * span
    if projected > tolerance:
        findings.append(
            f"RSS still rising at the end: {slope_mb_s * 60:.2f} MB/min over the second half, "
            f"{projected:.1f} MB over {span:.0f} s, over the tolerance {tolerance:.1f} MB"
        )
    return findings


def judge(samples: Sequence[Sample], limits: Limits | None = None) -> Verdict:
    """Judge a run's samples (ordered by time) for growth; see the module docstring."""
    limits = limits or Limits()
    baseline_samples, judged_samples = split(samples, limits)
    if len(baseline_samples) < limits.min_baseline_samples or (
        len(judged_samples) < limits.min_judged_samples
    ):
        finding = (
            f"too few samples to judge: {len(baseline_samples)} baseline and "
            f"{len(judged_samples)} judged after {limits.warmup_seconds:g} s of warm-up"
        )
        return Verdict(grew=True, findings=[finding], baseline=None, judged=None, tail=None)
    baseline = summarize(baseline_samples)
    judged = summarize(judged_samples)
    tail_count = max(3, round(len(judged_samples) * limits.tail_fraction))
    tail = summarize(judged_samples[-tail_count:])
    second_half = judged_samples[len(judged_samples) // 2 :]
    slope = slope_per_second([(s.t, s.rss_mb) for s in second_half])
    span = judged.end - judged.start
    tolerance = limits.rss_tolerance_mb(baseline.rss_median_mb)
    findings = _count_findings(baseline, judged_samples, limits)
    findings += _rss_findings(baseline, tail, slope, span, tolerance)
    return Verdict(
        grew=bool(findings),
        findings=findings,
        baseline=baseline,
        judged=judged,
        tail=tail,
        rss_slope_mb_per_min=slope * 60,
        rss_projected_growth_mb=slope * span,
        rss_tolerance_mb=tolerance,
    )
