"""The benchmark suite's report: targets, tables, Markdown and the throughput/latency plot.

Everything here works on the JSON documents the benchmark scripts write (keyed by part name:
append, import_events, cli_import, subscribe, projection, projection_rebuilds, replay_rss),
so a report can be rendered again from a run directory, or from synthetic data in a test.
A part that is missing (not run, or failed) is left out of the tables and its targets are
listed as not measured.

The text of the "What limits it" section comes from a Markdown file (benchmarks/limits.md):
one `## <target id>` heading per target, its body the explanation. `{fact}` placeholders in a
body are replaced by the run's measurements (see `facts`), so the text quotes this run;
`{self.<field>}` names a fact of the target explained (`{self.cpu_seconds}` under `rebuild`
reads `rebuild.waves.cpu_seconds` for the target `rebuild.waves`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Results = dict[str, Any]
"""The parts' JSON documents by part name."""

APPEND_TARGET_LEVEL = 32
APPEND_RATIO_AIMS = {"sqlite": 0.6, "postgres": 0.5}
APPEND_P99_LEVEL = 8
APPEND_P99_MS = 20.0
APPEND_SCALING_AIM = 1.6
IMPORT_AIM = 20_000.0
DECODE_RATIO_AIM = 0.7
LAG_P99_MS = 100.0
RSS_BOUND_MB = 300.0
REPLAY_EVENTS = 1_000_000
SUBSCRIBE_DEFAULT = ("BOTH", 100)
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.:-]+)\}")


@dataclass
class Target:
    """One target: what was measured, the aim, and whether it was met."""

    id: str
    part: str
    name: str
    measured: float | None
    aim: float
    unit: str
    higher_is_better: bool = True
    baseline: str = ""

    @property
    def met(self) -> bool | None:
        """True or False when measured; None when the part did not run."""
        if self.measured is None:
            return None
        if self.higher_is_better:
            return self.measured >= self.aim
        return self.measured <= self.aim

    @property
    def verdict(self) -> str:
        """How the report shows whether the target was met."""
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]

    def as_dict(self) -> dict[str, Any]:
        """The target as JSON."""
        return {
            "id": self.id,
            "part": self.part,
            "name": self.name,
            "measured": self.measured,
            "aim": self.aim,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "baseline": self.baseline,
            "met": self.met,
        }


@dataclass
class Table:
    """One Markdown table of a part."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ formatting


def number(value: float | None, digits: int | None = None) -> str:
    """A number as the report shows it: thousands separators, fewer decimals when large."""
    if value is None:
        return "—"
    if digits is None:
        whole = float(value).is_integer()
        digits = 0 if whole or abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def times(value: float | None) -> str:
    """A ratio, e.g. 0.62 followed by the multiplication sign."""
    return "—" if value is None else f"{value:.2f}×"  # noqa: RUF001


def aim_text(target: Target) -> str:
    """The aim with its direction and unit, e.g. ≥ 20 ms."""
    sign = "≥" if target.higher_is_better else "≤"
    return f"{sign} {format_value(target.aim, target.unit)}"


def format_value(value: float | None, unit: str) -> str:
    """A measured value with its unit."""
    if value is None:
        return "—"
    if unit == "×":  # noqa: RUF001
        return times(value)
    return f"{number(value)} {unit}"


def verdict_for(targets: list[Target], target_id: str) -> str:
    """The verdict of the target `target_id`, or empty when there is none."""
    for target in targets:
        if target.id == target_id:
            return target.verdict
    return ""


# ---------------------------------------------------------------------------- append part


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


# ---------------------------------------------------------------------------- import part


def passes_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A document's "passes" by name."""
    return {p["name"]: p for p in document["passes"]}


def import_targets(results: Results) -> list[Target]:
    """ImportEvents (and the CLI import, when run) against the 20,000 events/s aim."""
    document = results.get("import_events")
    passes = passes_by_name(document) if document else {}
    imported = passes.get("ImportEvents")
    targets = [
        Target(
            "import.rate",
            "import",
            "ImportEvents into SQLite, events/s",
            None if imported is None else float(imported["events_per_s"]),
            IMPORT_AIM,
            "events/s",
            baseline="raw batched insert, same run",
        )
    ]
    cli = results.get("cli_import")
    for row in cli["passes"] if cli else []:
        if row["name"].startswith("CLI import, "):
            setup = row["name"].removeprefix("CLI import, ")
            targets.append(
                Target(
                    f"import.cli.{slug(setup)}",
                    "import",
                    f"`incidents import` ({setup}), events/s",
                    float(row["events_per_s"]),
                    IMPORT_AIM,
                    "events/s",
                    baseline="raw batched insert, same run",
                )
            )
    return targets


def slug(text: str) -> str:
    """A target id part from free text: lower case, words joined by underscores."""
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))


def import_tables(results: Results, targets: list[Target]) -> list[Table]:
    """ImportEvents and ReportShootings (and the CLI import) against the raw batched insert."""
    tables = []
    document = results.get("import_events")
    if document:
        passes = passes_by_name(document)
        raw = passes["raw insert (mean)"]["events_per_s"]
        table = Table(
            "Bulk import against a raw batched insert",
            ["pass", "events", "events/s", "raw insert events/s", "ratio", "target"],
        )
        for row in document["passes"]:
            if row["name"].startswith("raw insert"):
                continue
            cell = ""
            if row["name"] == "ImportEvents":
                cell = f"≥ {number(IMPORT_AIM)} events/s: {verdict_for(targets, 'import.rate')}"
            table.rows.append(_rate_row(row, raw, cell))
        table.notes.append(
            f"Raw insert: sqlite3 executemany of the same rows, batch {document['batch']}, "
            f"measured before ({number(passes['raw insert, before']['events_per_s'])}/s) and "
            f"after ({number(passes['raw insert, after']['events_per_s'])}/s) the import; "
            "the ratio is to their mean."
        )
        tables.append(table)
    cli = results.get("cli_import")
    if cli:
        raw = next(p for p in cli["passes"] if p["name"].startswith("raw"))["events_per_s"]
        table = Table(
            "`incidents import` (the CLI) against a raw batched insert",
            ["pass", "events", "events/s", "raw insert events/s", "ratio", "target"],
        )
        for row in cli["passes"]:
            if row["name"].startswith("raw"):
                continue
            setup = row["name"].removeprefix("CLI import, ")
            target_id = f"import.cli.{slug(setup)}"
            verdict = verdict_for(targets, target_id)
            cell = f"≥ {number(IMPORT_AIM)} events/s: {verdict}" if verdict else ""
            table.rows.append(_rate_row(row, raw, cell))
        tables.append(table)
    return tables


def _rate_row(row: dict[str, Any], raw: float, cell: str) -> list[str]:
    rate = float(row["events_per_s"])
    return [
        row["name"].strip(),
        number(row["events"]),
        number(rate),
        number(raw),
        times(rate / raw if raw else None),
        cell,
    ]


# ------------------------------------------------------------------------- subscribe part


def subscribe_raw(document: dict[str, Any]) -> float:
    """The raw decode rate of the subscribe run."""
    return float(next(r for r in document["raw"] if r["mode"] == "raw decode")["events_per_s"])


def subscribe_targets(document: dict[str, Any] | None) -> list[Target]:
    """Catch-up at the default configuration and at the best one against the raw decode."""
    default = best = None
    raw = 0.0
    if document:
        raw = subscribe_raw(document)
        runs = document["results"]
        best = max(runs, key=lambda r: r["events_per_s"])
        default = next(r for r in runs if (r["mode"], r["batch"]) == SUBSCRIBE_DEFAULT)

    def ratio(run: dict[str, Any] | None) -> float | None:
        return None if run is None or not raw else float(run["events_per_s"]) / raw

    mode, batch = SUBSCRIBE_DEFAULT
    return [
        Target(
            "subscribe.ratio.default",
            "subscribe",
            f"Subscribe catch-up ÷ raw decode, default request ({mode}, batch {batch})",
            ratio(default),
            DECODE_RATIO_AIM,
            "×",  # noqa: RUF001
            baseline="raw read + decode, same run",
        ),
        Target(
            "subscribe.ratio.best",
            "subscribe",
            "Subscribe catch-up ÷ raw decode, best request"
            + (f" ({best['mode']}, batch {best['batch']})" if best else ""),
            ratio(best),
            DECODE_RATIO_AIM,
            "×",  # noqa: RUF001
            baseline="raw read + decode, same run",
        ),
    ]


def subscribe_tables(document: dict[str, Any], targets: list[Target]) -> list[Table]:
    """Every (payload format, batch) subscription against the raw decode."""
    raw = subscribe_raw(document)
    runs = document["results"]
    best = max(runs, key=lambda r: r["events_per_s"])
    table = Table(
        f"Subscribe catch-up through {number(document['events'])} events against raw decoding",
        ["payload", "batch", "events/s", "raw decode events/s", "ratio", "MB sent", "target"],
    )
    for run in runs:
        cells = []
        if (run["mode"], run["batch"]) == SUBSCRIBE_DEFAULT:
            cells.append(f"default ≥ 0.7×: {verdict_for(targets, 'subscribe.ratio.default')}")  # noqa: RUF001
        if run is best:
            cells.append(f"best ≥ 0.7×: {verdict_for(targets, 'subscribe.ratio.best')}")  # noqa: RUF001
        table.rows.append(
            [
                run["mode"],
                str(run["batch"]),
                number(run["events_per_s"]),
                number(raw),
                times(run["events_per_s"] / raw),
                number(run["megabytes"]),
                "; ".join(cells),
            ]
        )
    read = next(r for r in document["raw"] if r["mode"] == "raw read")
    table.notes.append(
        f"Raw baseline in-process: paging the SQLite log without decoding "
        f"{number(read['events_per_s'])} events/s, with decoding {number(raw)} events/s "
        f"(page {document['raw_page_size']})."
    )
    return [table]


# ------------------------------------------------------------------------ projection part


def rebuild_targets(results: Results) -> list[Target]:
    """Every projection's rebuild rate against the raw decode of the same run."""
    document = results.get("projection_rebuilds")
    if not document:
        return [
            Target(
                "rebuild",
                "projection",
                "projection rebuilds ÷ raw decode",
                None,
                DECODE_RATIO_AIM,
                "×",  # noqa: RUF001
            )
        ]
    return [
        Target(
            f"rebuild.{row['name']}",
            "projection",
            f"{row['name']} rebuild ÷ raw decode of the events it reads",
            float(row["ratio"]),
            DECODE_RATIO_AIM,
            "×",  # noqa: RUF001
            baseline="raw read + decode of the same events, same run",
        )
        for row in document["rebuilds"]
    ]


def rebuild_tables(results: Results, targets: list[Target]) -> list[Table]:
    """Every projection's rebuild against the raw decode, and the statistics check run."""
    tables = []
    document = results.get("projection_rebuilds")
    if document:
        raw = float(document["raw"]["events_per_s"])
        table = Table(
            f"Projection rebuild through {number(document['events'])} events against raw decoding",
            [
                "projection",
                "events/s",
                "raw decode of its events, events/s",
                "ratio",
                "whole-log raw decode, events/s",
                "ratio",
                "CPU s / wall s",
                "target",
            ],
        )
        for row in document["rebuilds"]:
            table.rows.append(
                [
                    row["name"],
                    number(row["events_per_s"]),
                    number(row["raw_same_events_per_s"]),
                    times(row["ratio"]),
                    number(raw),
                    times(row["ratio_to_whole_log"]),
                    f"{number(row['cpu_seconds'])} / {number(row['seconds'])}",
                    f"≥ 0.7×: {verdict_for(targets, 'rebuild.' + row['name'])}",  # noqa: RUF001
                ]
            )
        table.notes.append(
            "Every projection the registry assembles (projections/assembly.py), each from an "
            "empty view to the head, pages of 500 relevant events; every rate counts every log "
            "event. The target's baseline reads and decodes only the events the projection "
            "reads (its topics), right before its rebuild; the whole-log decode is shown for "
            "scale. The waves rebuild runs on a copy of the log and records the waves it finds."
        )
        tables.append(table)
    checked = results.get("projection")
    if checked:
        raw_row = next(r for r in checked["raw"] if r["mode"] == "raw decode")
        rebuild = checked["rebuild"]
        ok = "hold" if all(checked["checks"].values()) else "FAIL"
        tables.append(
            Table(
                "Statistics rebuild with its totals checked (benchmarks/projection.py)",
                ["projection", "events/s", "raw decode events/s", "ratio", "checks"],
                [
                    [
                        "statistics",
                        number(rebuild["events_per_s"]),
                        number(raw_row["events_per_s"]),
                        times(rebuild["events_per_s"] / raw_row["events_per_s"]),
                        ok,
                    ]
                ],
            )
        )
    return tables


def lag_targets(results: Results) -> list[Target]:
    """Live projection lag p99 against 100 ms."""
    document = results.get("projection")
    return [
        Target(
            "lag.p99",
            "lag",
            "live lag of the statistics projection, p99",
            None if not document else float(document["live_lag"]["lag_p99_ms"]),
            LAG_P99_MS,
            "ms",
            higher_is_better=False,
        )
    ]


def lag_tables(document: dict[str, Any], targets: list[Target]) -> list[Table]:
    """Live lag percentiles under full-speed appends."""
    lag = document["live_lag"]
    p95 = lag.get("lag_p95_ms")
    table = Table(
        "Live projection lag (ack of a write → statistics projection covers it)",
        [
            "writers",
            "appends/s",
            "write p50 / p99 ms",
            "lag p50 ms",
            "lag p95 ms",
            "lag p99 ms",
            "lag max ms",
            "target",
        ],
        [
            [
                str(lag["concurrency"]),
                number(lag["appends_per_s"]),
                f"{number(lag['write_p50_ms'])} / {number(lag['write_p99_ms'])}",
                number(lag["lag_p50_ms"]),
                number(p95),
                number(lag["lag_p99_ms"]),
                number(lag["lag_max_ms"]),
                f"p99 ≤ {LAG_P99_MS:g} ms: {verdict_for(targets, 'lag.p99')}",
            ]
        ],
    )
    table.notes.append(
        f"{lag['method']}; {lag['warmup_seconds']:g} s warm-up + {lag['seconds']:g} s measured; "
        f"{number(lag['projection_advances'])} projection advances of "
        f"{number(lag['events_per_advance'])} events; no raw baseline applies."
    )
    return [table]


# ---------------------------------------------------------------------------- replay part


def replay_targets(document: dict[str, Any] | None) -> list[Target]:
    """Peak RSS of the server for each replay pass, and of the rebuild, against 300 MB."""
    if not document:
        return [
            Target(
                "replay.rss",
                "memory",
                "peak RSS while replaying",
                None,
                RSS_BOUND_MB,
                "MB",
                higher_is_better=False,
            )
        ]
    targets = [
        Target(
            f"replay.rss.{slug(p['mode'].split()[0])}",
            "memory",
            f"server peak RSS, {p['mode']} through {number(p['events'])} events",
            max(float(p["peak_rss_mb"]), float(p["hwm_mb"])),
            RSS_BOUND_MB,
            "MB",
            higher_is_better=False,
            baseline="server RSS at rest",
        )
        for p in document["passes"]
    ]
    rebuild = document.get("rebuild")
    if rebuild:
        targets.append(
            Target(
                "replay.rss.rebuild",
                "memory",
                f"{rebuild['projection']} rebuild process peak RSS through "
                f"{number(rebuild['events'])} events",
                float(rebuild["peak_rss_mb"]),
                RSS_BOUND_MB,
                "MB",
                higher_is_better=False,
            )
        )
    return targets


def replay_tables(document: dict[str, Any], targets: list[Target]) -> list[Table]:
    """Peak RSS per pass next to the RSS at rest, and the log build time."""
    build = document["build"]
    table = Table(
        f"Memory when replaying {number(document['events'])} events",
        ["pass", "events/s", "seconds", "RSS at rest MB", "peak RSS MB", "target"],
    )
    for p in document["passes"]:
        target_id = f"replay.rss.{slug(p['mode'].split()[0])}"
        table.rows.append(
            [
                f"server, {p['mode']}",
                number(p["events_per_s"]),
                number(p["seconds"]),
                number(p["rss_before_mb"]),
                number(max(p["peak_rss_mb"], p["hwm_mb"])),
                f"≤ {RSS_BOUND_MB:g} MB: {verdict_for(targets, target_id)}",
            ]
        )
    rebuild = document.get("rebuild")
    if rebuild:
        table.rows.append(
            [
                f"{rebuild['projection']} rebuild (own process)",
                number(rebuild["events_per_s"]),
                number(rebuild["seconds"]),
                "—",
                number(rebuild["peak_rss_mb"]),
                f"≤ {RSS_BOUND_MB:g} MB: {verdict_for(targets, 'replay.rss.rebuild')}",
            ]
        )
    table.notes.append(
        f"Log built in {number(build['seconds'])} s ({number(build['events_per_s'])} events/s, "
        f"{number(build['file_mb'])} MB; {number(build['domain_events'])} events through the "
        "domain, the rest those histories again under fresh ids). Server peak = max(sampled "
        "VmRSS every 20 ms, VmHWM); rebuild peak = the same, sampled in the rebuild's own "
        "process."
    )
    if document["events"] < REPLAY_EVENTS:
        table.notes.append(
            f"Reduced size: the target is stated for {number(REPLAY_EVENTS)} events."
        )
    return [table]


# --------------------------------------------------------------------------------- targets


def evaluate(results: Results) -> list[Target]:
    """Every target of the suite, measured from the parts' documents."""
    return [
        *append_targets(results.get("append")),
        *import_targets(results),
        *subscribe_targets(results.get("subscribe")),
        *rebuild_targets(results),
        *lag_targets(results),
        *replay_targets(results.get("replay_rss")),
    ]


TABLE_BUILDERS: list[tuple[str, str, Callable[[Results, list[Target]], list[Table]]]] = [
    ("append", "Unary append", lambda r, t: append_tables(r["append"], t)),
    ("import_events", "Bulk import", import_tables),
    ("subscribe", "Subscription catch-up", lambda r, t: subscribe_tables(r["subscribe"], t)),
    ("projection_rebuilds", "Projection rebuild", rebuild_tables),
    ("projection", "Live projection lag", lambda r, t: lag_tables(r["projection"], t)),
    ("replay_rss", "Replay memory", lambda r, t: replay_tables(r["replay_rss"], t)),
]


# ----------------------------------------------------------------------------------- facts


def facts(results: Results, machine: dict[str, Any]) -> dict[str, float]:
    """The run's measurements by name, for the placeholders of the limits text.

    Names: `machine.cpus`, `machine.load_1min_at_start|end`;
    `append.<store>_<processes>.<level>.<field>` and `append.echo.<level>.<field>`
    (calls_per_s, p50_ms, p99_ms, max_ms, server_cpu_ms, client_cpu_ms, postgres_cpu_ms,
    cores_busy, ratio, cpu_bound_calls_per_s: 1000 ÷ server CPU ms per call,
    cores_bound_calls_per_s: CPUs * 1000 ÷ all CPU ms per call);
    `cli_import.<pass slug>` (events/s);
    `append.scaling.<store>`; `import.<pass slug>` (events/s) and `import.ratio`;
    `subscribe.<mode>_<batch>` (events/s), `subscribe.<mode>_<batch>.ratio`,
    `subscribe.raw_read`, `subscribe.raw_decode`; `rebuild.<name>` (events/s),
    `rebuild.<name>.ratio|cpu_seconds|seconds|cpu_share|raw_same_events_per_s`,
    `rebuild.raw_decode`;
    `lag.<field>` (every number of the live-lag result); `replay.<pass>.peak_rss_mb|
    rss_before_mb|events_per_s` and `replay.rebuild.peak_rss_mb`.
    """
    found: dict[str, float] = {"machine.cpus": float(machine.get("cpus") or 0)}
    for moment in ("start", "end"):
        loads = str(machine.get(f"load_average_at_{moment}", "")).split()
        if loads:
            found[f"machine.load_1min_at_{moment}"] = float(loads[0])
    for name, builder in FACT_BUILDERS.items():
        if results.get(name):
            found.update(builder(results[name], found["machine.cpus"]))
    return found


def _append_facts(document: dict[str, Any], cpus: float) -> Iterator[tuple[str, float]]:
    rows = append_rows(document)
    for (target, level), row in rows.items():
        key = f"append.{target.replace(':', '_')}.{level}"
        echo = rows.get(("echo", level))
        all_cpu = (
            row["server_cpu_ms_per_call"]
            + row["client_cpu_ms_per_call"]
            + row["postgres_cpu_ms_per_call"]
        )
        values = {
            "calls_per_s": row["calls_per_s"],
            "p50_ms": row["p50_ms"],
            "p99_ms": row["p99_ms"],
            "max_ms": row["max_ms"],
            "server_cpu_ms": row["server_cpu_ms_per_call"],
            "client_cpu_ms": row["client_cpu_ms_per_call"],
            "postgres_cpu_ms": row["postgres_cpu_ms_per_call"],
            "cores_busy": row["cores_busy"],
            "ratio": row["calls_per_s"] / echo["calls_per_s"] if echo else 0.0,
            "cpu_bound_calls_per_s": 1000 / row["server_cpu_ms_per_call"]
            if row["server_cpu_ms_per_call"]
            else 0.0,
            "cores_bound_calls_per_s": cpus * 1000 / all_cpu if all_cpu else 0.0,
        }
        for field_name, value in values.items():
            yield f"{key}.{field_name}", float(value)
    for scaling in append_targets(document):
        if scaling.id.startswith("append.scaling.") and scaling.measured is not None:
            yield scaling.id, scaling.measured


def _import_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for row in document["passes"]:
        yield f"import.{slug(row['name'])}", float(row["events_per_s"])
    yield "import.ratio", float(document["import_ratio_to_raw"])


def _cli_import_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for row in document["passes"]:
        yield f"cli_import.{slug(row['name'])}", float(row["events_per_s"])


def _subscribe_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    raw = subscribe_raw(document)
    for row in document["raw"]:
        yield f"subscribe.{slug(row['mode'])}", float(row["events_per_s"])
    for run in document["results"]:
        key = f"subscribe.{run['mode'].lower()}_{run['batch']}"
        yield key, float(run["events_per_s"])
        yield f"{key}.ratio", float(run["events_per_s"]) / raw


def _rebuild_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    if document.get("raw"):
        yield "rebuild.raw_decode", float(document["raw"]["events_per_s"])
    for row in document["rebuilds"]:
        key = f"rebuild.{row['name']}"
        yield key, float(row["events_per_s"])
        yield f"{key}.ratio", float(row["ratio"])
        yield f"{key}.cpu_seconds", float(row["cpu_seconds"])
        yield f"{key}.seconds", float(row["seconds"])
        yield f"{key}.cpu_share", float(row["cpu_seconds"]) / float(row["seconds"])
        yield f"{key}.raw_same_events_per_s", float(row.get("raw_same_events_per_s") or 0.0)


def _lag_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for name, value in document["live_lag"].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield f"lag.{name}", float(value)


def _replay_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for p in document["passes"]:
        key = f"replay.{slug(p['mode'].split()[0])}"
        yield f"{key}.peak_rss_mb", max(float(p["peak_rss_mb"]), float(p["hwm_mb"]))
        yield f"{key}.rss_before_mb", float(p["rss_before_mb"])
        yield f"{key}.events_per_s", float(p["events_per_s"])
    if document.get("rebuild"):
        yield "replay.rebuild.peak_rss_mb", float(document["rebuild"]["peak_rss_mb"])
    yield "replay.build_seconds", float(document["build"]["seconds"])


FACT_BUILDERS: dict[str, Callable[[dict[str, Any], float], Iterator[tuple[str, float]]]] = {
    "append": _append_facts,
    "import_events": _import_facts,
    "cli_import": _cli_import_facts,
    "subscribe": _subscribe_facts,
    "projection_rebuilds": _rebuild_facts,
    "projection": _lag_facts,
    "replay_rss": _replay_facts,
}


# ---------------------------------------------------------------------------------- limits


def load_limits(path: Path) -> dict[str, str]:
    """The explanations by target id from a Markdown file of `## <target id>` sections."""
    limits: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in [*path.read_text().splitlines(), "## "]:
        if line.startswith("## "):
            if current:
                limits[current] = "\n".join(lines).strip()
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    return limits


def limit_for(limits: dict[str, str], target_id: str) -> str:
    """The explanation of `target_id`: its own section, else its family's (id minus its last
    part), else empty."""
    return limits.get(target_id) or limits.get(target_id.rsplit(".", 1)[0]) or ""


def resolve(name: str, target_id: str) -> str:
    """A placeholder's fact name: `self` stands for the target's id (`{self.ratio}`)."""
    if name == "self" or name.startswith("self."):
        return target_id + name.removeprefix("self")
    return name


def fill(text: str, known: dict[str, float], target_id: str = "") -> str:
    """Replace each `{name}` in `text` by the measurement of that name (unknown ones stay)."""

    def value(match: re.Match[str]) -> str:
        name = resolve(match.group(1), target_id)
        return number(known[name]) if name in known else match.group(0)

    return PLACEHOLDER.sub(value, text)


def unknown_placeholders(text: str, known: dict[str, float], target_id: str = "") -> list[str]:
    """The `{name}` placeholders of `text` that no measurement fills."""
    names = {resolve(name, target_id) for name in PLACEHOLDER.findall(text)}
    return sorted(name for name in names if name not in known)


# -------------------------------------------------------------------------------- markdown


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (cells' pipes escaped)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]


def render_markdown(report: dict[str, Any], limits: dict[str, str], plot_name: str) -> str:
    """The report as Markdown: machine, parts, every part's tables, targets, limits."""
    results: Results = report["results"]
    targets = [Target(**{k: v for k, v in t.items() if k != "met"}) for t in report["targets"]]
    known = facts(results, report["machine"])
    suite = report["suite"]
    out = [
        "# Benchmark report",
        "",
        f"Generated by `{suite['command']}` ({suite['mode']} run) on {suite['finished_at']}; "
        f"every ratio is to a baseline measured in the same run. Raw JSON: `report.json`.",
    ]
    if suite["mode"] != "full":
        out += [
            "",
            f"**{suite['mode'].capitalize()} run: reduced sizes and windows; the numbers "
            "are a smoke test, not the measurement.**",
        ]
    out += ["", "## Machine", "", *markdown_table(["fact", "value"], machine_rows(report))]
    out += [
        "",
        "## Parts run",
        "",
        *markdown_table(
            ["part", "command", "seconds", "exit status"],
            [
                [p["name"], f"`{p['command']}`", number(p["seconds"], 1), str(p["exit_status"])]
                for p in suite["parts"]
            ],
        ),
    ]
    out += [
        "",
        "## Targets",
        "",
        *markdown_table(
            ["target", "measured", "aim", "baseline", "verdict", "what limits it"],
            [
                [
                    t.name,
                    format_value(t.measured, t.unit),
                    aim_text(t),
                    t.baseline or "—",
                    t.verdict,
                    "see below" if t.met is False else "",
                ]
                for t in targets
            ],
        ),
    ]
    for part, title, builder in TABLE_BUILDERS:
        if not results.get(part):
            continue
        out += ["", f"## {title}"]
        for table in builder(results, targets):
            out += ["", f"### {table.title}", "", *markdown_table(table.header, table.rows)]
            out += [*(f"\n{note}" for note in table.notes)]
    out += ["", "## Throughput and latency", "", f"![calls/s and latency per setup]({plot_name})"]
    out += ["", *limits_section(targets, limits, known)]
    return "\n".join(out).rstrip() + "\n"


def reflow(text: str) -> str:
    """Join the lines of each paragraph (filled placeholders leave the line breaks ragged)."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def machine_rows(report: dict[str, Any]) -> list[list[str]]:
    """The machine facts as table rows."""
    return [[key.replace("_", " "), str(value)] for key, value in report["machine"].items()]


def limits_section(
    targets: list[Target], limits: dict[str, str], known: dict[str, float]
) -> list[str]:
    """The "What limits it" section: each missed target with its explanation."""
    missed = [t for t in targets if t.met is False]
    out = ["## What limits it", ""]
    if not missed:
        return [*out, "Every measured target was met."]
    for target in missed:
        text = limit_for(limits, target.id)
        body = (
            reflow(fill(text, known, target.id))
            if text
            else "No explanation recorded in benchmarks/limits.md."
        )
        out += [
            f"### {target.name} (`{target.id}`)",
            "",
            f"Measured {format_value(target.measured, target.unit)}, aim {aim_text(target)}.",
            "",
            body,
            "",
        ]
    return out


# ------------------------------------------------------------------------------------ plot


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
