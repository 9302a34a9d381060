"""`incidents import --mapping`: historical shootings from a CSV file, in batches.

Each row becomes a ReportShooting with its original occurred_at and a request id made from
the row key, sent `--batch-size` at a time with ReportShootings (all of a batch or none).
Re-running the import replays those rows instead of recording them again; the checkpoint
(`<file>.import-checkpoint`) lets an interrupted import resume after its last batch.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer

from incident_registry_client import RegistryClient, ShootingReport
from incident_registry_client.cli import checkpoint as cp
from incident_registry_client.cli.batches import Prefetched
from incident_registry_client.cli.csv_mapping import CsvMapping, RowError
from incident_registry_client.cli.importing import IMPORT_TIMEOUT, ImportSummary
from incident_registry_client.cli.progress import Interrupts, progress_bar
from incident_registry_client.cli.session import (
    INTERRUPTED,
    USAGE,
    Output,
    Settings,
    describe,
    exit_code,
    fail,
)
from incident_registry_client.errors import InvalidArgumentError, RegistryError

MAX_BATCH = 1000
"""The most shootings ReportShootings takes in one call."""
SHOWN_REJECTS = 10

_INDEX = re.compile(r"requests\[(\d+)\]")


@dataclass
class RowBatch:
    """Reports of consecutive rows, their row numbers, and rows left out with the reason."""

    reports: list[ShootingReport] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    end_row: int = 0


def read_rows(
    path: Path, mapping: CsvMapping, *, after: int, size: int, skip_invalid: bool
) -> Iterator[RowBatch]:
    """Batches of reports from the data row after `after` (rows count from 1)."""
    batch = RowBatch()
    with path.open(newline="", encoding=mapping.encoding) as handle:
        for number, row in enumerate(csv.DictReader(handle, delimiter=mapping.delimiter), 1):
            if number <= after:
                continue
            batch.end_row = number
            try:
                report = mapping.report(row)
            except RowError as err:
                if not skip_invalid:
                    msg = f"row {number}: {err} (--skip-invalid leaves such rows out)"
                    raise RowError(err.column, msg) from None
                batch.rejected.append((number, str(err)))
                continue
            if report is None:
                batch.rejected.append((number, "left out by the mapping"))
                continue
            batch.reports.append(report)
            batch.rows.append(number)
            if len(batch.reports) >= size:
                yield batch
                batch = RowBatch()
    if batch.end_row:
        yield batch


def count_rows(path: Path, mapping: CsvMapping) -> int:
    """The data rows of a CSV file."""
    with path.open(newline="", encoding=mapping.encoding) as handle:
        return max(0, sum(1 for _ in csv.reader(handle, delimiter=mapping.delimiter)) - 1)


def _send(
    registry: RegistryClient, batch: RowBatch, *, skip_invalid: bool, timeout: float
) -> tuple[int, int, int]:
    """Send a batch (leaving out rows the registry finds invalid, with --skip-invalid).

    Returns how many shootings were recorded, how many replayed, and the last position.
    """
    while batch.reports:
        try:
            results = registry.report_shootings(shootings=batch.reports, timeout=timeout)
        except InvalidArgumentError as err:
            bad = {
                int(match[1])
                for violation in err.field_violations
                if (match := _INDEX.match(violation.field))
            }
            if not skip_invalid or not bad:
                raise
            for index in sorted(bad, reverse=True):
                reasons = "; ".join(
                    f"{v.field.split('.', 1)[-1]}: {v.description}"
                    for v in err.field_violations
                    if v.field.startswith(f"requests[{index}]")
                )
                batch.rejected.append((batch.rows[index], reasons))
                del batch.reports[index], batch.rows[index]
            continue
        replayed = sum(1 for result in results if result.replayed)
        return len(results) - replayed, replayed, max(r.position for r in results)
    return 0, 0, 0


def _with_rows(error: RegistryError, batch: RowBatch) -> str:
    """The error's message, naming rows of the file instead of indexes of the batch."""

    def row_of(match: re.Match[str]) -> str:
        index = int(match[1])
        return f"row {batch.rows[index]}" if index < len(batch.rows) else match[0]

    return _INDEX.sub(row_of, describe(error))


def run_csv_import(
    registry: RegistryClient,
    settings: Settings,
    out: Output,
    *,
    path: Path,
    mapping: CsvMapping,
    batch_size: int,
    restart: bool,
    skip_invalid: bool,
) -> ImportSummary:
    """Import a CSV file of shootings, resuming after its checkpoint unless `restart`."""
    checkpoint_path = cp.path_for(path)
    start = None if restart else cp.load(checkpoint_path)
    if start is not None:
        cp.check_matches(start, source=path, kind="csv", target=settings.target)
        out.note(f"resuming after row {start.line:,} ({checkpoint_path.name})")
    state = start or cp.ImportCheckpoint(str(path.resolve()), "csv", settings.target)
    first_row = state.line
    rejects: list[tuple[int, str]] = []
    sent = 0
    started = time.perf_counter()
    timeout = max(settings.timeout, IMPORT_TIMEOUT)
    batches = read_rows(path, mapping, after=state.line, size=batch_size, skip_invalid=skip_invalid)
    with (
        Interrupts() as interrupts,
        progress_bar(out.err, unit="rows", enabled=settings.progress) as progress,
        Prefetched(batches) as prefetched,
    ):
        task = progress.add_task("import", total=count_rows(path, mapping), completed=first_row)
        try:
            for batch in prefetched:
                try:
                    recorded, replayed, position = _send(
                        registry, batch, skip_invalid=skip_invalid, timeout=timeout
                    )
                except RegistryError as err:
                    out.note(f"the checkpoint stands at row {state.line:,}")
                    fail(out, _with_rows(err, batch), exit_code(err))
                sent += recorded + replayed
                rejects += batch.rejected
                state = state.advanced(
                    line=batch.end_row,
                    imported=recorded,
                    skipped=replayed,
                    rejected=len(batch.rejected),
                    last_position=position,
                )
                cp.save(checkpoint_path, state)
                progress.update(task, completed=state.line)
                if interrupts.requested:
                    break
        except RowError as err:
            fail(out, f"{path}: {err}; the checkpoint stands at row {state.line:,}", USAGE)
        except KeyboardInterrupt:
            interrupts.requested = True
    for row, reason in rejects[:SHOWN_REJECTS]:
        out.note(f"row {row} not imported: {reason}")
    if len(rejects) > SHOWN_REJECTS:
        out.note(f"… and {len(rejects) - SHOWN_REJECTS:,} more rows not imported")
    seconds = time.perf_counter() - started
    summary = ImportSummary(
        "csv",
        str(path),
        state.line,
        state.imported,
        state.skipped,
        state.rejected,
        state.last_position,
        seconds,
        sent / seconds if seconds else 0.0,
        first_row,
    )
    if interrupts.requested:
        out.note(
            f"interrupted: rows 1-{state.line:,} are imported ({checkpoint_path.name}); "
            f"resume with the same command"
        )
        raise typer.Exit(INTERRUPTED)
    checkpoint_path.unlink(missing_ok=True)
    return summary
