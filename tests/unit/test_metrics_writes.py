"""The group-commit writer's observer, and the write counters it feeds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prometheus_client import CollectorRegistry

from service.app.commands import RegisterGang, ReviseCasualties
from service.app.results import WriteResult
from service.domain.errors import NotFoundError, VersionConflictError
from service.domain.events import TOPICS_BY_EVENT_TYPE
from service.metrics_collectors import WriteCounters, event_type_of
from tests.unit.app_driver import App, registries
from tests.unit.test_group_commit import RacingStore

SHOOTING = TOPICS_BY_EVENT_TYPE["ShootingReported"]
REVISION = TOPICS_BY_EVENT_TYPE["CasualtiesRevised"]


class Recorder:
    """A WriteObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, Any]] = []

    def appended(self, topics: Sequence[str]) -> None:
        self.told.append(("appended", tuple(topics)))

    def replayed(self) -> None:
        self.told.append(("replayed", None))

    def rejected(self, error: BaseException) -> None:
        self.told.append(("rejected", type(error)))


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    with registries(tmp_path / "db.sqlite") as open_:
        yield open_


def _revise(app: App, incident_id: Any, expected: int | None) -> Any:
    command = ReviseCasualties(incident_id, 1, 0, "died in hospital")
    return app.registry.incidents.revise_casualties(command, app.ctx(expected_version=expected))


def test_the_observer_is_told_each_outcome_before_the_caller_is_answered(
    open_app: Callable[..., App],
) -> None:
    app = open_app()
    recorder = Recorder()
    app.registry.writer.observer = recorder

    incident = app.report()
    assert recorder.told == [("appended", (SHOOTING,))]

    command = RegisterGang(name="Kings")
    first = app.run(app.registry.gangs.register(command, app.ctx("gang-1")))
    again = app.run(app.registry.gangs.register(command, app.ctx("gang-1")))
    assert (first.replayed, again.replayed) == (False, True)
    with pytest.raises(VersionConflictError):
        app.run(_revise(app, incident, expected=7))
    with pytest.raises(NotFoundError):
        app.run(_revise(app, UUID(int=1), expected=None))
    app.run(_revise(app, incident, expected=1))

    assert recorder.told == [
        ("appended", (SHOOTING,)),
        ("appended", (TOPICS_BY_EVENT_TYPE["GangRegistered"],)),
        ("replayed", None),
        ("rejected", VersionConflictError),
        ("rejected", NotFoundError),
        ("appended", (REVISION,)),
    ]


def test_a_command_retried_after_a_lost_race_is_reported_once(
    open_app: Callable[..., App], tmp_path: Path
) -> None:
    stores = [RacingStore(tmp_path / "db.sqlite") for _ in range(2)]
    a, b = (open_app(store) for store in stores)
    recorders = [Recorder(), Recorder()]
    a.registry.writer.observer, b.registry.writer.observer = recorders
    stores[0].barrier = stores[1].barrier = threading.Barrier(2)
    command = a.shooting()

    async def race() -> list[WriteResult]:
        return list(
            await asyncio.gather(
                a.registry.incidents.report_shooting(command, a.ctx("r-1")),
                b.registry.incidents.report_shooting(command, b.ctx("r-1")),
            )
        )

    a.run(race())
    assert sum(s.conflicts for s in stores) == 1
    told = sorted(recorders[0].told + recorders[1].told)
    assert told == [("appended", (SHOOTING,)), ("replayed", None)]


def test_a_failing_observer_does_not_fail_the_write(open_app: Callable[..., App]) -> None:
    app = open_app()

    class Broken(Recorder):
        def appended(self, topics: Sequence[str]) -> None:
            raise RuntimeError("metrics are broken")

    app.registry.writer.observer = Broken()
    for _ in range(2):  # the writer thread survived the first one
        write = app.registry.incidents.report_shooting(app.shooting(), app.ctx())
        app.run(asyncio.wait_for(write, 10))
    assert app.head() == 2


def test_write_counters_count_events_by_type_replays_and_conflicts() -> None:
    registry = CollectorRegistry()
    counters = WriteCounters(registry)
    counters.appended([SHOOTING])
    counters.appended([SHOOTING, REVISION])
    counters.replayed()
    counters.rejected(VersionConflictError("x", 3, 2))
    counters.rejected(NotFoundError("incident", "x"))

    def value(name: str, **labels: str) -> float | None:
        found: float | None = registry.get_sample_value(name, labels)
        return found

    assert value("incidents_events_appended_total", type="ShootingReported") == 2
    assert value("incidents_events_appended_total", type="CasualtiesRevised") == 1
    assert value("incidents_idempotent_replays_total") == 1
    assert value("incidents_version_conflicts_total") == 1


def test_event_types_are_named_by_their_class() -> None:
    assert event_type_of(SHOOTING) == "ShootingReported"
    assert event_type_of("somewhere.else:Aggregate.SomethingHappened") == "SomethingHappened"
