"""`incidents export`: the log, or a range of it, streamed to a JSONL file.

The file is appended to; `--resume` continues after the last complete line's position (a
torn last line, left by a crash, is cut off first), so an interrupted export is finished by
running it again with `--resume`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import typer

from incident_registry_client import ExportFinished, RegistryClient
from incident_registry_client.cli import jsonl
from incident_registry_client.cli.progress import Interrupts, progress_bar
from incident_registry_client.cli.session import INTERRUPTED, Output, Settings, fail

FLUSH_EVERY = 2000
"""Events written between flushes of the file."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: events, the range, the rate, and whether it is complete."""

    exported: int
    after_position: int
    last_position: int
    to_position: int
    seconds: float
    events_per_second: float
    complete: bool


def start_after(path: Path | None, *, after: int, resume: bool, out: Output) -> int:
    """The position the export starts after: --after, or the file's last one with --resume."""
    if path is None or not path.exists() or path.stat().st_size == 0:
        return after
    if not resume:
        fail(
            out,
            f"{path} already holds events: pass --resume to continue after its last position, "
            "or choose another file",
        )
    try:
        return max(after, jsonl.last_position(path, repair=True))
    except jsonl.BadLineError as err:
        fail(out, f"cannot resume: the last line of {path} is not an exported event ({err})")


def run_export(
    registry: RegistryClient,
    settings: Settings,
    out: Output,
    *,
    path: Path | None,
    after: int,
    to: int,
    resume: bool,
    batch_size: int,
) -> ExportSummary:
    """Export (after, to] — to 0 meaning the head now — into `path` (None: stdout)."""
    after = start_after(path, after=after, resume=resume, out=out)
    end = to or registry.get_head().position
    if after >= end:
        return ExportSummary(0, after, after, end, 0.0, 0.0, complete=True)
    handle: BinaryIO = path.open("ab") if path is not None else sys.stdout.buffer
    written = 0
    last = after
    started = time.perf_counter()
    complete = False
    try:
        with (
            Interrupts() as interrupts,
            progress_bar(out.err, unit="events", enabled=settings.progress) as progress,
            registry.export_events(
                after_position=after, to_position=end, max_batch_size=batch_size
            ) as stream,
        ):
            task = progress.add_task("export", total=end - after)
            for item in stream:
                if isinstance(item, ExportFinished):
                    complete = True
                    break
                handle.write(jsonl.encode(item))
                written += 1
                last = item.position
                if written % FLUSH_EVERY == 0:
                    handle.flush()
                    progress.update(task, completed=last - after)
                    if interrupts.requested:
                        break
            progress.update(task, completed=last - after)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop at once; the lines written so far stay
    finally:
        handle.flush()
        if path is not None:
            os.fsync(handle.fileno())
            handle.close()
    seconds = time.perf_counter() - started
    summary = ExportSummary(
        written, after, last, end, seconds, written / seconds if seconds else 0.0, complete
    )
    if not complete:
        where = path if path is not None else "FILE"
        out.note(
            f"interrupted after position {last} ({written:,} events written); "
            f"continue with: incidents export {where} --resume"
        )
        raise typer.Exit(INTERRUPTED)
    return summary


def describe(summary: ExportSummary) -> str:
    """One line about an export, for people."""
    if not summary.exported:
        return f"nothing to export: position {summary.last_position} is the end of the range"
    return (
        f"exported {summary.exported:,} events (positions {summary.after_position + 1}"
        f"-{summary.last_position}) in {summary.seconds:.1f} s: "
        f"{summary.events_per_second:,.0f} events/s"
    )
