"""The report's throughput/latency plot of the unary append part (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from report_parts_append import APPEND_P99_MS, append_rows, append_setups


def render_plot(append: dict[str, Any] | None, path: Path) -> None:
    """Calls/s per setup and level (echo included), and p50/p99 latency per setup and level."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    if append:
        rows = append_rows(append)
        names = ["echo", *append_setups(append)]
        levels = [int(level) for level in append["levels"]]
        width = 0.8 / len(levels)
        for index, level in enumerate(levels):
            xs = [i + (index - (len(levels) - 1) / 2) * width for i in range(len(names))]
            ys = [rows[n, level]["calls_per_s"] if (n, level) in rows else 0 for n in names]
            left.bar(xs, ys, width, label=f"{level} in flight")
        left.set_xticks(range(len(names)), names)
        for name in names:
            series = [(lv, rows[name, lv]) for lv in levels if (name, lv) in rows]
            xs = [lv for lv, _ in series]
            (line,) = right.plot(
                xs, [r["p50_ms"] for _, r in series], marker="o", label=f"{name} p50"
            )
            right.plot(
                xs,
                [r["p99_ms"] for _, r in series],
                marker="^",
                linestyle="--",
                color=line.get_color(),
                label=f"{name} p99",
            )
        right.axhline(APPEND_P99_MS, color="grey", linewidth=0.8, linestyle=":")
        right.set_xscale("log", base=2)
        right.set_yscale("log")
        right.set_xticks(levels, [str(level) for level in levels])
    else:
        left.text(0.5, 0.5, "append not measured", ha="center", transform=left.transAxes)
    left.set_title("ReportShooting calls/s per setup (echo = bare gRPC baseline)")
    left.set_ylabel("calls/s")
    right.set_title(f"latency per setup (dotted: p99 target {APPEND_P99_MS:g} ms)")
    right.set_xlabel("calls in flight")
    right.set_ylabel("ms")
    if append:
        left.legend()
        right.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
