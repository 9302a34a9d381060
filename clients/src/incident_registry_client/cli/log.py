"""The log: `tail` (follow it), `export` and `import` (JSONL, or CSV with a mapping), `verify`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from incident_registry_client import (
    CaughtUp,
    EventFilter,
    ExportedEvent,
    PayloadFormat,
    RecordedEvent,
)
from incident_registry_client.cli import checkpoint, exporting, importing, jsonl
from incident_registry_client.cli.csv_import import MAX_BATCH as MAX_CSV_BATCH
from incident_registry_client.cli.csv_import import run_csv_import
from incident_registry_client.cli.csv_mapping import MappingError, load_mapping
from incident_registry_client.cli.progress import Interrupts, progress_bar
from incident_registry_client.cli.render import rows_table, text
from incident_registry_client.cli.session import (
    FAILED,
    Output,
    fail,
    session,
    settings_of,
)
from incident_registry_client.cli.verification import Verification

Repeatable = Annotated[list[str] | None, typer.Option(help="Repeatable; any of them matches.")]
BatchSize = Annotated[int | None, typer.Option(help="Events or rows per call.")]


def summary(payload: Any) -> str:
    """A short line about an event's payload."""
    if payload is None or not dataclasses.is_dataclass(payload):
        return ""
    parts = []
    for field in dataclasses.fields(payload):
        value = getattr(payload, field.name)
        if value in (None, "", (), 0, False):
            continue
        parts.append(f"{field.name}={text(value)}")
    line = ", ".join(parts)
    return line if len(line) <= 120 else line[:119] + "…"


def tail(
    ctx: typer.Context,
    *,
    event_type: Repeatable = None,
    stream_type: Repeatable = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(help="municipality:<code>, police_zone:<code> or gang:<id>; repeatable."),
    ] = None,
    after: Annotated[int | None, typer.Option(help="Start after this position.")] = None,
    from_start: Annotated[bool, typer.Option(help="Start at the first event.")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many events (0: never).")] = 0,
    until_caught_up: Annotated[
        bool, typer.Option(help="Stop at the head instead of following live events.")
    ] = False,
) -> None:
    """Follow the log: new events as they are recorded (or from --after / --from-start)."""
    if after is not None and from_start:
        raise typer.BadParameter("give either --after or --from-start")
    start = 0 if from_start else after
    shown = 0
    with session(ctx) as (registry, out):
        events = registry.subscribe(
            after_position=start,
            from_end=start is None,
            filter=EventFilter(
                event_types=event_type or (),
                stream_types=stream_type or (),
                tags=tag or (),
            ),
            payload_format=PayloadFormat.BOTH if out.json else PayloadFormat.TYPED,
        )
        try:
            with events:
                for item in events:
                    if isinstance(item, CaughtUp) and until_caught_up:
                        break
                    if not isinstance(item, RecordedEvent):
                        continue
                    _show_event(out, item)
                    shown += 1
                    if limit and shown >= limit:
                        break
        except KeyboardInterrupt:
            resume = events.position if events.position is not None else start or 0
            out.note(f"stopped; continue with: incidents tail --after {resume}")


def _show_event(out: Output, event: RecordedEvent) -> None:
    if out.json:
        out.json_line(event)
        return
    recorded = event.recorded_at.isoformat(timespec="seconds") if event.recorded_at else ""
    out.console.print(
        f"{event.position:>8} {recorded} {event.stream_type:<25} {event.event_type:<30} "
        f"{str(event.stream_id)[:8]} v{event.stream_version} {summary(event.payload)}",
        markup=False,
        soft_wrap=True,
    )


def export(
    ctx: typer.Context,
    *,
    file: Annotated[str, typer.Argument(help="The JSONL file to append to ('-': stdout).")],
    after: Annotated[int, typer.Option(help="Export the events after this position.")] = 0,
    to: Annotated[int, typer.Option(help="Up to this position (0: the head now).")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue after the last position in FILE.")] = False,
    batch_size: Annotated[int, typer.Option(help="Events per message (1-2000).")] = 1000,
) -> None:
    """Export the whole log, or a range of it, to a JSONL file (resumable)."""
    path = None if file == "-" else Path(file)
    if path is None and resume:
        raise typer.BadParameter("--resume needs a file, not stdout")
    settings = settings_of(ctx)
    with session(ctx) as (registry, out):
        result = exporting.run_export(
            registry,
            settings,
            out,
            path=path,
            after=after,
            to=to,
            resume=resume,
            batch_size=batch_size,
        )
        if path is None:
            out.note(exporting.describe(result))
        else:
            out.emit(result, lambda c: c.print(exporting.describe(result)))


def import_(
    ctx: typer.Context,
    *,
    file: Annotated[
        Path, typer.Argument(help="A JSONL export, or a CSV file with --mapping.", exists=True)
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(help="CSV column mapping (JSON or TOML): FILE holds shootings.", exists=True),
    ] = None,
    batch_size: BatchSize = None,
    restart: Annotated[
        bool, typer.Option(help="Ignore the checkpoint and start at the first line.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="CSV: leave out rows that cannot be read or are refused.")
    ] = False,
) -> None:
    """Import a JSONL export, or historical shootings from CSV (resumable, never duplicates)."""
    settings = settings_of(ctx)
    out = Output(settings)
    if mapping is None and file.suffix.lower() == ".csv":
        fail(out, f"{file} looks like CSV: give its column mapping with --mapping")
    try:
        csv_mapping = load_mapping(mapping, default_timezone=settings.timezone) if mapping else None
    except MappingError as err:
        fail(out, f"error: {err}")
    limit = MAX_CSV_BATCH if csv_mapping else importing.MAX_BATCH
    size = batch_size or (500 if csv_mapping else importing.MAX_BATCH)
    if not 1 <= size <= limit:
        fail(out, f"error: --batch-size is 1 to {limit}")
    with session(ctx) as (registry, out):
        try:
            if csv_mapping is None:
                result = importing.run_import(
                    registry, settings, out, path=file, batch_size=size, restart=restart
                )
            else:
                result = run_csv_import(
                    registry,
                    settings,
                    out,
                    path=file,
                    mapping=csv_mapping,
                    batch_size=size,
                    restart=restart,
                    skip_invalid=skip_invalid,
                )
        except checkpoint.CheckpointError as err:
            fail(out, f"error: {err}")
        out.emit(result, lambda c: c.print(importing.describe_import(result)))


def verify(
    ctx: typer.Context,
    *,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Check a JSONL export instead of the registry.", exists=True),
    ] = None,
    partial: Annotated[
        bool, typer.Option(help="The log was exported from a later position.")
    ] = False,
) -> None:
    """Re-read the whole log: events decode, versions are contiguous, positions increase."""
    settings = settings_of(ctx)
    check = Verification(partial=partial)
    out = Output(settings)
    with Interrupts() as interrupts:
        if file is not None:
            _verify_file(file, check, interrupts)
        else:
            with session(ctx) as (registry, out):
                head = registry.get_head().position
                with progress_bar(out.err, unit="events", enabled=settings.progress) as progress:
                    task = progress.add_task("verify", total=head)
                    with registry.export_events(to_position=head) as stream:
                        for item in stream:
                            if isinstance(item, ExportedEvent):
                                check.check(item)
                                if check.events % 2000 == 0:
                                    progress.update(task, completed=item.position)
                                    if interrupts.requested:
                                        break
                    progress.update(task, completed=check.last_position)
        if interrupts.requested:
            check.problem("verify", "interrupted before the end of the log")
    out.emit(check.summary(), lambda c: _show_verification(c, check, file))
    if not check.passed:
        raise typer.Exit(FAILED)


def _verify_file(path: Path, check: Verification, interrupts: Interrupts) -> None:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                event = jsonl.decode(raw, number)
            except jsonl.BadLineError as err:
                check.problem(f"line {number}", err.reason)
                continue
            check.check(event, f"line {number} (position {event.position})")
            if interrupts.requested:
                return


def _show_verification(console: Console, check: Verification, file: Path | None) -> None:
    source = str(file) if file else "the registry's log"
    rows = sorted(check.by_type.items())
    console.print(rows_table(f"events in {source}", ["event type", "events"], rows, numeric=1))
    console.print(
        f"{check.events:,} events in {check.streams:,} streams, positions "
        f"{check.first_position}-{check.last_position}"
    )
    for problem in check.problems:
        console.print(f"  [red]✗[/] {escape(problem)}")
    if check.problem_count > len(check.problems):
        console.print(f"  … {check.problem_count - len(check.problems):,} more problems")
    if check.passed:
        console.print(
            "[bold green]PASS[/]: every event decodes, versions are contiguous, positions increase"
        )
    else:
        console.print(f"[bold red]FAIL[/]: {check.problem_count:,} problems")


def register(app: typer.Typer) -> None:
    """Add the log commands to `app`."""
    panel = "The log"
    app.command("tail", rich_help_panel=panel)(tail)
    app.command("export", rich_help_panel=panel)(export)
    app.command("import", rich_help_panel=panel)(import_)
    app.command("verify", rich_help_panel=panel)(verify)
