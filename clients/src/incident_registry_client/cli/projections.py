"""Read models: `projections status|rebuild|reset|pause|resume`, and `replay` (rebuild all).

A rebuild runs in the registry (or its projection workers); the command shows each
projection's progress towards the head until all have caught up. Ctrl-C stops watching, not
the rebuild: `incidents replay --attach` watches again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console

from incident_registry_client import ProjectionInfo, ProjectionState, RegistryClient
from incident_registry_client.cli.progress import Interrupts, progress_bar
from incident_registry_client.cli.render import rows_table
from incident_registry_client.cli.session import (
    FAILED,
    INTERRUPTED,
    REFUSED,
    Output,
    Settings,
    fail,
    session,
    settings_of,
)

projections_app = typer.Typer(help="See and steer the read models (projections).")

Names = Annotated[list[str], typer.Argument(help="Projection names (see `projections status`).")]
POLL_SECONDS = 0.25


def status_table(found: Sequence[ProjectionInfo]) -> object:
    """The projections as a table."""
    rows = [
        (
            p.name,
            p.state,
            f"{p.position:,}/{p.head:,}",
            f"{p.lag_events:,}",
            f"{p.lag.total_seconds():.1f} s",
            "here" if p.applied_here else "worker",
            p.error or "",
        )
        for p in found
    ]
    columns = ["projection", "state", "position/head", "lag", "lag time", "applied", "error"]
    return rows_table("projections", columns, rows)


def wait_caught_up(
    registry: RegistryClient, settings: Settings, out: Output, targets: dict[str, int]
) -> list[ProjectionInfo]:
    """Show each projection's progress until it reaches its target position."""
    with (
        Interrupts() as interrupts,
        progress_bar(out.err, unit="events", enabled=settings.progress) as progress,
    ):
        tasks = {name: progress.add_task(name, total=max(t, 1)) for name, t in targets.items()}
        while True:
            found = [p for p in registry.list_projections() if p.name in targets]
            for p in found:
                progress.update(tasks[p.name], completed=min(p.position, targets[p.name]) or 0)
                if p.state is ProjectionState.FAULTED:
                    fail(out, f"error: projection {p.name} faulted: {p.error}", FAILED)
                if p.state is ProjectionState.PAUSED and p.position < targets[p.name]:
                    fail(
                        out,
                        f"error: projection {p.name} is paused at {p.position:,}: "
                        f"incidents projections resume {p.name}",
                        REFUSED,
                    )
            if all(p.position >= targets[p.name] for p in found):
                for name, target in targets.items():
                    progress.update(tasks[name], completed=max(target, 1))
                return found
            if interrupts.requested:
                out.note(
                    "stopped watching; the rebuild goes on in the registry: "
                    "incidents replay --attach (or projections status)"
                )
                raise typer.Exit(INTERRUPTED)
            time.sleep(POLL_SECONDS)


@projections_app.command("status")
def status(ctx: typer.Context) -> None:
    """Every projection: state, position, head, lag, where it is applied, error."""
    with session(ctx) as (registry, out):
        found = registry.list_projections()
        out.emit(found, lambda c: c.print(status_table(found)))


def _finish(out: Output, found: Sequence[ProjectionInfo], seconds: float | None) -> None:
    def show(console: Console) -> None:
        console.print(status_table(found))
        if seconds is not None:
            console.print(f"caught up in {seconds:.1f} s")

    out.emit(found, show)


@projections_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    *,
    names: Names,
    wait: Annotated[bool, typer.Option(help="Show progress until caught up.")] = True,
) -> None:
    """Empty read models and rebuild them from the start of the log."""
    settings = settings_of(ctx)
    with session(ctx) as (registry, out):
        started = time.perf_counter()
        targets = {name: registry.rebuild_projection(name=name).head for name in names}
        if not wait:
            _finish(out, [p for p in registry.list_projections() if p.name in targets], None)
            return
        found = wait_caught_up(registry, settings, out, targets)
        _finish(out, found, time.perf_counter() - started)


@projections_app.command("reset")
def reset(
    ctx: typer.Context,
    *,
    name: Annotated[str, typer.Argument(help="The projection.")],
    position: Annotated[int, typer.Option(help="Apply only the events after this position.")],
    wait: Annotated[bool, typer.Option(help="Show progress until caught up.")] = True,
) -> None:
    """Empty a read model and apply only the events after --position."""
    settings = settings_of(ctx)
    with session(ctx) as (registry, out):
        started = time.perf_counter()
        info = registry.reset_projection(name=name, position=position)
        found = wait_caught_up(registry, settings, out, {name: info.head}) if wait else [info]
        _finish(out, found, time.perf_counter() - started if wait else None)


@projections_app.command("pause")
def pause(ctx: typer.Context, names: Names) -> None:
    """Stop applying events (after the batch in hand) until resumed."""
    with session(ctx) as (registry, out):
        found = [registry.pause_projection(name=name) for name in names]
        _finish(out, found, None)


@projections_app.command("resume")
def resume(ctx: typer.Context, names: Names) -> None:
    """Apply events again, after a pause or once a fault's cause is fixed."""
    with session(ctx) as (registry, out):
        found = [registry.resume_projection(name=name) for name in names]
        _finish(out, found, None)


def replay(
    ctx: typer.Context,
    *,
    attach: Annotated[
        bool, typer.Option(help="Watch a replay already started, without restarting it.")
    ] = False,
) -> None:
    """Rebuild every read model from the log and show progress until all are caught up."""
    settings = settings_of(ctx)
    with session(ctx) as (registry, out):
        started = time.perf_counter()
        if attach:
            targets = {p.name: p.head for p in registry.list_projections()}
        else:
            names = [p.name for p in registry.list_projections()]
            targets = {name: registry.rebuild_projection(name=name).head for name in names}
        found = wait_caught_up(registry, settings, out, targets)
        _finish(out, found, time.perf_counter() - started)


def register(app: typer.Typer) -> None:
    """Add `projections` and `replay` to `app`."""
    app.add_typer(projections_app, name="projections", rich_help_panel="Read models")
    app.command("replay", rich_help_panel="Read models")(replay)
