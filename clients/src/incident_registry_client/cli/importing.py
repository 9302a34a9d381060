"""`incidents import` of a JSONL export: ImportEvents a batch at a time, with a checkpoint.

Batches keep the file's order (a stream's versions must continue one another), are sent one
after the other with the next one decoded meanwhile, and each acknowledged batch moves the
checkpoint. Events already in the registry are skipped by the server, so re-running or
resuming an import never duplicates anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer

from incident_registry_client import ExportedEvent, RegistryClient
from incident_registry_client.cli import checkpoint as cp
from incident_registry_client.cli import jsonl
from incident_registry_client.cli.batches import Prefetched, count_lines
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
from incident_registry_client.errors import ImportConflictError, RegistryError

MAX_BATCH = 2000
"""The most events ImportEvents takes in one call."""
MAX_BATCH_BYTES = 7 * 512 * 1024
"""A batch is sent early once its lines reach 3.5 MiB: the server takes messages of 4 MiB,
and an event is smaller in protobuf than as a line of JSON."""
IMPORT_TIMEOUT = 120.0
"""Seconds one batch may take at least (a first batch also starts the server's checkers)."""


@dataclass
class Batch:
    """Consecutive events of the file, the line of each, and the offset after the last."""

    events: list[ExportedEvent] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    end_line: int = 0
    end_offset: int = 0
    size: int = 0


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, in this run and in all runs since its checkpoint was made.

    For a JSONL export, `imported` events were appended and `skipped` were already there;
    for a CSV file, `imported` shootings were recorded, `skipped` replayed (recorded by an
    earlier run) and `rejected` rows left out.
    """

    kind: str
    source: str
    lines: int
    imported: int
    skipped: int
    rejected: int
    last_position: int
    seconds: float
    events_per_second: float
    resumed_from_line: int


def read_batches(path: Path, *, line: int, offset: int, size: int) -> Iterator[Batch]:
    """Batches of at most `size` events from the line after `line` (at byte `offset`)."""
    batch = Batch()
    with path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            line += 1
            offset += len(raw)
            if raw.strip():
                batch.events.append(jsonl.decode(raw, line))
                batch.lines.append(line)
                batch.size += len(raw)
            batch.end_line, batch.end_offset = line, offset
            if len(batch.events) >= size or batch.size >= MAX_BATCH_BYTES:
                yield batch
                batch = Batch()
    if batch.events or batch.end_line:
        yield batch


def _with_lines(error: RegistryError, batch: Batch) -> str:
    """The error's message, naming lines of the file instead of indexes of the batch."""
    text = describe(error)
    if isinstance(error, ImportConflictError):
        text += "".join(
            f"\n  line {batch.lines[c.index]}: stream {c.stream_id} version {c.stream_version}"
            f" already holds another event (position {c.existing_position})"
            for c in error.conflicts
            if 0 <= c.index < len(batch.lines)
        )

    def line_of(match: re.Match[str]) -> str:
        index = int(match[1])
        return f"line {batch.lines[index]}" if index < len(batch.lines) else match[0]

    return re.sub(r"events\[(\d+)\]", line_of, text)


def run_import(
    registry: RegistryClient,
    settings: Settings,
    out: Output,
    *,
    path: Path,
    batch_size: int,
    restart: bool,
) -> ImportSummary:
    """Import an export file, resuming after its checkpoint unless `restart`."""
    checkpoint_path = cp.path_for(path)
    start = None if restart else cp.load(checkpoint_path)
    if start is not None:
        cp.check_matches(start, source=path, kind="jsonl", target=settings.target)
        out.note(f"resuming after line {start.line:,} ({checkpoint_path.name})")
    state = start or cp.ImportCheckpoint(str(path.resolve()), "jsonl", settings.target)
    first_line = state.line
    total = first_line + count_lines(str(path), start=state.offset)
    done_now = 0
    started = time.perf_counter()
    batches = read_batches(path, line=state.line, offset=state.offset, size=batch_size)
    with (
        Interrupts() as interrupts,
        progress_bar(out.err, unit="events", enabled=settings.progress) as progress,
        Prefetched(batches) as prefetched,
    ):
        task = progress.add_task("import", total=total, completed=first_line)
        try:
            for batch in prefetched:
                if batch.events:
                    try:
                        result = registry.import_events(
                            events=batch.events, timeout=max(settings.timeout, IMPORT_TIMEOUT)
                        )
                    except RegistryError as err:
                        out.note(f"the checkpoint stands at line {state.line:,}")
                        fail(out, _with_lines(err, batch), exit_code(err))
                    done_now += len(batch.events)
                    state = state.advanced(
                        line=batch.end_line,
                        offset=batch.end_offset,
                        imported=result.imported,
                        skipped=result.skipped,
                        last_position=result.last_position,
                    )
                else:
                    state = state.advanced(line=batch.end_line, offset=batch.end_offset)
                cp.save(checkpoint_path, state)
                progress.update(task, completed=state.line)
                if interrupts.requested:
                    break
        except jsonl.BadLineError as err:
            fail(out, f"{path}: {err}; the checkpoint stands at line {state.line:,}", USAGE)
        except KeyboardInterrupt:
            interrupts.requested = True  # a second Ctrl-C: the batch in hand is abandoned
    seconds = time.perf_counter() - started
    summary = ImportSummary(
        "jsonl",
        str(path),
        state.line,
        state.imported,
        state.skipped,
        state.rejected,
        state.last_position,
        seconds,
        done_now / seconds if seconds else 0.0,
        first_line,
    )
    if interrupts.requested:
        out.note(
            f"interrupted: lines 1-{state.line:,} are imported ({checkpoint_path.name}); "
            f"resume with: incidents import {path}"
        )
        raise typer.Exit(INTERRUPTED)
    checkpoint_path.unlink(missing_ok=True)
    return summary


def describe_import(summary: ImportSummary) -> str:
    """One line about an import, for people."""
    rate = f"in {summary.seconds:.1f} s: {summary.events_per_second:,.0f}"
    if summary.kind == "csv":
        rejected = f", {summary.rejected:,} rows not imported" if summary.rejected else ""
        return (
            f"recorded {summary.imported:,} shootings, replayed {summary.skipped:,} recorded "
            f"before{rejected} ({summary.lines:,} rows) {rate} rows/s"
        )
    return (
        f"imported {summary.imported:,} events, skipped {summary.skipped:,} already present "
        f"({summary.lines:,} lines) {rate} events/s"
    )
