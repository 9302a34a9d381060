"""The report of a soak run: the verdict, the samples as a table and the calls by method."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tests.support.soak.judgement import Sample, Verdict

SAMPLE_HEADER = f"{'t (s)':>8} {'RSS (MB)':>9} {'threads':>8} {'fds':>6} {'pg':>6}"


@dataclass
class SoakReport:
    """Everything a run measured and found."""

    store: str
    seconds: float
    samples: list[Sample]
    verdict: Verdict
    calls: Counter[tuple[str, str]]
    acknowledged: int
    head: int
    problems: list[str]
    exit_status: int | None
    server_log_tail: str = ""

    @property
    def passed(self) -> bool:
        """No growth and no problem."""
        return not self.verdict.grew and not self.problems

    def calls_per_second(self) -> dict[str, float]:
        """Answered calls per second, by method."""
        totals: Counter[str] = Counter()
        for (method, _), n in self.calls.items():
            totals[method] += n
        return {method: n / self.seconds for method, n in sorted(totals.items())}

    def describe(self) -> str:
        """A summary for people: verdict, samples, calls, problems."""
        total = sum(self.calls.values())
        lines = [
            f"soak on {self.store}: {self.seconds:.0f} s, {total} calls "
            f"({total / self.seconds:.0f}/s), {self.acknowledged} writes acknowledged, "
            f"head {self.head}, server exit status {self.exit_status}",
            self.verdict.describe(),
            sample_table(self.samples, every=max(1, len(self.samples) // 20)),
            "calls by method and code:",
        ]
        lines += [
            f"  {m:32} {c:28} {n:7} ({n / self.seconds:.1f}/s)"
            for (m, c), n in sorted(self.calls.items())
        ]
        lines += [f"problem: {p}" for p in self.problems]
        if self.problems and self.server_log_tail:
            lines += ["server log tail:", self.server_log_tail]
        return "\n".join(lines)


def sample_row(sample: Sample) -> str:
    """One sample as a row of `sample_table` (under SAMPLE_HEADER)."""
    pg = "-" if sample.pg_connections is None else str(sample.pg_connections)
    return f"{sample.t:8.1f} {sample.rss_mb:9.1f} {sample.threads:8} {sample.fds:6} {pg:>6}"


def sample_table(samples: list[Sample], every: int = 1) -> str:
    """Every `every`-th sample (and the last) as a table."""
    chosen = samples[::every]
    if samples and chosen[-1] is not samples[-1]:
        chosen.append(samples[-1])
    return "\n".join([SAMPLE_HEADER, *(sample_row(s) for s in chosen)])
