"""The unary append part of the report: its targets and tables (benchmarks/append.py's JSON)."""

from __future__ import annotations

from typing import Any

from report_model import Table, Target, aim_text, number, times, verdict_for

APPEND_TARGET_LEVEL = 32
APPEND_RATIO_AIMS = {"sqlite": 0.6, "postgres": 0.5}
APPEND_P99_LEVEL = 8
APPEND_P99_MS = 20.0
APPEND_SCALING_AIM = 1.6


def append_rows(document: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """append.json's results by (target, in-flight level)."""
    return {(r["target"], int(r["in_flight"])): r for r in document["results"]}


def append_setups(document: dict[str, Any]) -> list[str]:
    """The registry setups measured, in the order run (echo excluded)."""
    return [str(name) for name in document["setups"]]


def append_targets(document: dict[str, Any] | None) -> list[Target]:
    """Ratio to echo and p99 per single-process store, and 2 ÷ 1 process scaling per store."""
    stores = ("sqlite", "postgres")
    targets: list[Target] = []
    rows = append_rows(document) if document else {}

    def rate(name: str) -> float | None:
        row = rows.get((name, APPEND_TARGET_LEVEL))
        return None if row is None else float(row["calls_per_s"])

    echo = rate("echo")
    for store in stores:
        single, double = f"{store}:1", f"{store}:2"
        one, two = rate(single), rate(double)
        p99_row = rows.get((single, APPEND_P99_LEVEL))
        targets += [
            Target(
                f"append.ratio.{store}",
                "append",
                f"{single} calls/s ÷ echo at {APPEND_TARGET_LEVEL} in flight",
                one / echo if one is not None and echo else None,
                APPEND_RATIO_AIMS[store],
                "×",  # noqa: RUF001
                baseline="echo server, same run",
            ),
            Target(
                f"append.p99.{store}",
                "append",
                f"{single} p99 latency at {APPEND_P99_LEVEL} in flight",
                None if p99_row is None else float(p99_row["p99_ms"]),
                APPEND_P99_MS,
                "ms",
                higher_is_better=False,
            ),
            Target(
                f"append.scaling.{store}",
                "append",
                f"{double} calls/s ÷ {single} at {APPEND_TARGET_LEVEL} in flight",
                two / one if two is not None and one else None,
                APPEND_SCALING_AIM,
                "×",  # noqa: RUF001
                baseline=f"{single}, same run",
            ),
        ]
    return targets


def append_tables(document: dict[str, Any], targets: list[Target]) -> list[Table]:
    """Every setup and level next to echo at the same level, and the 2 ÷ 1 scaling."""
    rows = append_rows(document)
    table = Table(
        "Unary append (ReportShooting) against a bare gRPC echo server",
        [
            "setup",
            "in flight",
            "calls/s",
            "echo calls/s",
            "ratio",
            "p50 ms",
            "p99 ms",
            "server CPU ms/call (echo)",
            "cores busy",
            "errors",
            "target",
        ],
    )
    for name in ["echo", *append_setups(document)]:
        for level in document["levels"]:
            row, echo = rows.get((name, level)), rows.get(("echo", level))
            if row is None or echo is None:
                continue
            store = name.partition(":")[0]
            table.rows.append(
                [
                    name,
                    str(level),
                    number(row["calls_per_s"]),
                    number(echo["calls_per_s"]),
                    times(row["calls_per_s"] / echo["calls_per_s"] if echo["calls_per_s"] else 0),
                    number(row["p50_ms"]),
                    number(row["p99_ms"]),
                    f"{number(row['server_cpu_ms_per_call'], 3)} "
                    f"({number(echo['server_cpu_ms_per_call'], 3)})",
                    number(row["cores_busy"]),
                    str(row["errors"]),
                    _append_cell(targets, name, store, level),
                ]
            )
    table.notes.append(
        f"{document['connections']} client connections; {document['warmup_seconds']:g} s "
        f"warm-up + {document['seconds']:g} s measured per level; projections "
        f"{'in the servers' if document.get('projections_in_process') else 'not applied'}; "
        "cores busy = CPU seconds of server(s) + client + PostgreSQL per second."
    )
    scaling = Table(
        "Two server processes against one",
        [
            "store",
            f"2 processes calls/s at {APPEND_TARGET_LEVEL}",
            "1 process calls/s",
            "ratio",
            "target",
        ],
    )
    for target in targets:
        if target.id.startswith("append.scaling.") and target.measured is not None:
            store = target.id.rpartition(".")[2]
            two, one = (
                rows[f"{store}:2", APPEND_TARGET_LEVEL],
                rows[f"{store}:1", APPEND_TARGET_LEVEL],
            )
            scaling.rows.append(
                [
                    store,
                    number(two["calls_per_s"]),
                    number(one["calls_per_s"]),
                    times(target.measured),
                    f"{aim_text(target)}: {target.verdict}",
                ]
            )
    return [table, scaling]


def _append_cell(targets: list[Target], name: str, store: str, level: int) -> str:
    cells = []
    if name == f"{store}:1" and level == APPEND_TARGET_LEVEL:
        cells.append(
            f"ratio ≥ {times(APPEND_RATIO_AIMS[store])}: "
            f"{verdict_for(targets, f'append.ratio.{store}')}"
        )
    if name == f"{store}:1" and level == APPEND_P99_LEVEL:
        cells.append(f"p99 ≤ {APPEND_P99_MS:g} ms: {verdict_for(targets, f'append.p99.{store}')}")
    return "; ".join(cells)
