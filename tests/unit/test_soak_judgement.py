"""The soak judgement on synthetic runs: a flat run passes, each kind of leak fails."""

from __future__ import annotations

import math

import pytest

from tests.support.soak.judgement import Limits, Sample, judge, slope_per_second

SECONDS = 75.0
INTERVAL = 0.5
BASE_RSS_KB = 95 * 1024


def run(
    *,
    rss_kb_per_s: float = 0.0,
    threads_per_min: float = 0.0,
    fds_per_min: float = 0.0,
    connections_per_min: float | None = None,
    warmup_rss_kb: int = 20 * 1024,
) -> list[Sample]:
    """A 75 s run sampled every 0.5 s: noisy but flat unless a leak is asked for.

    The first 10 s warm up (RSS climbs by `warmup_rss_kb`, a pool grows by two threads and
    four fds), then RSS wobbles by +-1.5 MB around its level plus the leak.
    """
    samples: list[Sample] = []
    for i in range(int(SECONDS / INTERVAL)):
        t = i * INTERVAL
        warm = min(t / 10.0, 1.0)
        wobble = int(1536 * math.sin(i * 1.7))
        rss = BASE_RSS_KB + int(warm * warmup_rss_kb) + wobble + int(rss_kb_per_s * t)
        threads = 20 + round(2 * warm) + int(threads_per_min * t / 60) + (i % 7 == 0)
        fds = 44 + round(4 * warm) + int(fds_per_min * t / 60) + (i % 5 == 0)
        connections = (
            None
            if connections_per_min is None
            else 6 + round(warm) + int(connections_per_min * t / 60)
        )
        samples.append(Sample(t, rss, threads, fds, connections))
    return samples


def test_a_flat_run_after_warm_up_passes():
    verdict = judge(run(connections_per_min=0.0))
    assert not verdict.grew, verdict.describe()
    assert verdict.baseline is not None
    assert verdict.baseline.pg_connections_max == 7


def test_warm_up_growth_is_not_counted():
    verdict = judge(run(warmup_rss_kb=80 * 1024))
    assert not verdict.grew, verdict.describe()


def test_a_steady_memory_leak_fails():
    verdict = judge(run(rss_kb_per_s=400))  # 24 MB a minute
    assert verdict.grew
    assert any("RSS" in finding for finding in verdict.findings), verdict.describe()


def test_a_leak_that_is_still_rising_at_the_end_fails_even_if_the_median_is_within():
    samples = run()
    # Flat for most of the run, then climbing steeply for the last 12 s.
    climbing = [
        Sample(s.t, s.rss_kb + int(max(0.0, s.t - 63) * 1500), s.threads, s.fds) for s in samples
    ]
    verdict = judge(climbing)
    assert any("still rising" in finding for finding in verdict.findings), verdict.describe()


def test_a_thread_leak_fails():
    verdict = judge(run(threads_per_min=6))
    assert any("threads" in finding for finding in verdict.findings), verdict.describe()


def test_an_fd_leak_fails():
    verdict = judge(run(fds_per_min=12))
    assert any("open fds" in finding for finding in verdict.findings), verdict.describe()


def test_a_connection_leak_fails():
    verdict = judge(run(connections_per_min=4))
    assert any("PostgreSQL connections" in f for f in verdict.findings), verdict.describe()


def test_one_extra_thread_within_the_allowance_passes():
    samples = run()
    late = [Sample(s.t, s.rss_kb, s.threads + (s.t > 50), s.fds, s.pg_connections) for s in samples]
    assert not judge(late).grew


def test_too_short_a_run_is_not_judged_a_pass():
    verdict = judge(run()[:40])  # 20 s: the warm-up leaves too little
    assert verdict.grew
    assert "too few samples" in verdict.findings[0]


def test_the_rss_tolerance_is_a_fraction_with_a_floor():
    limits = Limits()
    assert limits.rss_tolerance_mb(100.0) == 16.0
    assert limits.rss_tolerance_mb(400.0) == pytest.approx(40.0)


def test_slope_of_a_line_and_of_degenerate_input():
    assert slope_per_second([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope_per_second([(1.0, 1.0)]) == 0.0
    assert slope_per_second([(1.0, 1.0), (1.0, 2.0)]) == 0.0
