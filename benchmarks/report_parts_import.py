"""The bulk import part of the report: ImportEvents and the CLI import against a raw insert."""

from __future__ import annotations

from typing import Any

from report_model import Results, Table, Target, number, passes_by_name, slug, times, verdict_for

IMPORT_AIM = 20_000.0


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
