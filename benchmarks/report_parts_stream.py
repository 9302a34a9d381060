"""The streaming parts of the report: subscription catch-up, projection rebuilds, live lag.

Their targets and tables, from subscribe.json, projection_rebuilds.json and projection.json.
"""

from __future__ import annotations

from typing import Any

from report_model import Results, Table, Target, number, times, verdict_for

DECODE_RATIO_AIM = 0.7
LAG_P99_MS = 100.0

SUBSCRIBE_DEFAULT = ("BOTH", 100)


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
