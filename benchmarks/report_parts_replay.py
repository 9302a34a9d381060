"""The replay memory part of the report: peak RSS while replaying and rebuilding."""

from __future__ import annotations

from typing import Any

from report_model import Table, Target, number, slug, verdict_for

RSS_BOUND_MB = 300.0
REPLAY_EVENTS = 1_000_000


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
