"""Running projections, on SQLite and on PostgreSQL.

A started runner follows the log and applies each event it reads exactly once, in log order;
it stops applying while paused and goes on where it was; a projection that cannot apply an
event stops in the FAULTED state with the error recorded, without retrying, until an operator
resumes it or the process restarts. The `Projections` set reports each one's lag, serves reads
from one snapshot, and answers operators by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest

from projections.base import Projection, Recorded
from projections.runner import ProjectionRunner
from projections.runtime import Projections
from projections.store import FAULTED, PAUSED, RUNNING, ViewStore, ViewTransaction
from service.app.commands import RegisterGang, ReportShooting, ReviseCasualties
from service.app.head_watcher import HeadWatcher
from service.app.registry import Registry
from service.app.results import WriteContext
from service.domain.errors import NotFoundError
from service.domain.events import topics_for
from service.domain.values import TimePrecision
from tests.integration.test_projection_store import STATISTICS, WHEN, Stores
from tests.support.projections import run_to_head, runner_for

TIMEOUT = 5.0
"""Longest wait for a runner to catch up; a pass takes milliseconds."""
CONTROL = 0.05
"""The runners' control interval: how often a paused or faulted runner re-reads its state."""
SETTLE = 5 * CONTROL
"""How long a runner that must not apply anything is watched: several control intervals."""


class Journal(Projection):
    """Every report and casualty revision, one row per event (a duplicate would fail)."""

    name: ClassVar[str] = "journal"
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = ("ShootingReported", "CasualtiesRevised")
    tables: ClassVar[tuple[str, ...]] = ("test_journal",)
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS test_journal ("
        "position BIGINT PRIMARY KEY, event_type TEXT NOT NULL)",
    )

    def __init__(self) -> None:
        self.broken = False
        self.pages = 0

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        self.pages += 1
        for event in events:
            if self.broken and event.event_type == "CasualtiesRevised":
                msg = f"cannot apply the revision at {event.position}"
                raise RuntimeError(msg)
        tx.executemany(
            "INSERT INTO test_journal VALUES (?, ?)",
            [(event.position, event.event_type) for event in events],
        )


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    opener = Stores(request.param, tmp_path, lambda: request.getfixturevalue("postgres"))
    yield opener
    opener.close()


# --- Helpers ------------------------------------------------------------------------------


class Log:
    """Writes events to a registry's log from the running event loop."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @staticmethod
    def _ctx() -> WriteContext:
        return WriteContext(request_id=uuid4().hex, actor="test")

    async def report(self) -> UUID:
        command = ReportShooting(
            occurred_at=WHEN, occurred_at_precision=TimePrecision.MINUTE, municipality_code="21001"
        )
        return (await self.registry.incidents.report_shooting(command, self._ctx())).aggregate_id

    async def revise(self, incident: UUID) -> int:
        command = ReviseCasualties(incident, killed=1, injured=0, reason="died")
        return (await self.registry.incidents.revise_casualties(command, self._ctx())).position

    async def gang(self) -> None:
        command = RegisterGang(name=f"Crew {uuid4().hex[:8]}")
        await self.registry.gangs.register(command, self._ctx())

    async def mixed(self, rounds: int) -> int:
        """Reports, revisions and events the journal does not read; return the head."""
        for _ in range(rounds):
            incident = await self.report()
            await self.gang()
            await self.revise(incident)
            await self.gang()  # the last event of the log is not the journal's
        return self.head()

    def head(self) -> int:
        return self.registry.backend.head()

    def journal_events(self) -> list[tuple[int, str]]:
        """What the journal should hold: every report and revision of the log, in order."""
        page = self.registry.backend.read_page(
            after=0, limit=10_000, topics=topics_for(Journal.event_types, [])
        )
        events = [(n.id, self.registry.mapper.to_domain_event(n)) for n in page.notifications]
        return [(position, type(event).__name__) for position, event in events]


def journal(tx: ViewTransaction) -> list[tuple[int, str]]:
    rows = tx.fetchall("SELECT position, event_type FROM test_journal ORDER BY position")
    return [(int(position), event_type) for position, event_type in rows]


def journal_of(store: ViewStore) -> list[tuple[int, str]]:
    with store.transaction(write=False) as tx:
        return journal(tx)


@contextlib.asynccontextmanager
async def started(
    registry: Registry, store: ViewStore, *projections: Projection, apply: bool = True
) -> AsyncIterator[Projections]:
    """Projections on `store`, started in the running loop, with short intervals."""
    reads = ThreadPoolExecutor(max_workers=1)
    watcher = HeadWatcher(registry.backend, reads, poll_interval=0.02)
    runners = [
        ProjectionRunner(
            registry.backend,
            registry.mapper,
            store,
            projection,
            watcher,
            apply=apply,
            poll_interval=0.02,
            control_interval=CONTROL,
        )
        for projection in projections
    ]
    running = Projections(registry.backend, registry.mapper, store, runners)
    running.start()
    try:
        yield running
    finally:
        await running.stop()
        watcher.close()
        reads.shutdown(wait=True)


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll `check` (a quick read) until it holds, or fail after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            msg = f"timed out waiting until {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.01)


# --- Following the log --------------------------------------------------------------------


def test_a_runner_applies_each_event_it_reads_once_in_log_order(stores):
    registry = stores.registry()
    store = stores.open(stores.storage())
    log = Log(registry)

    async def scenario() -> None:
        await log.mixed(2)  # written before the runner starts
        async with started(registry, store, Journal()) as projections:
            runner = projections.runner("journal")
            assert await runner.wait_for(log.head(), TIMEOUT)
            head = await log.mixed(3)  # written while it runs
            assert await runner.wait_for(head, TIMEOUT)

            assert journal_of(store) == log.journal_events()
            assert len(log.journal_events()) == 10
            # It reached the head, although the last events are not the journal's; a position
            # moved only over other events is written a moment later.
            assert runner.position == head
            await until(lambda: store.state("journal").position == head, "the position is written")

    asyncio.run(scenario())


def test_two_workers_on_one_model_apply_each_event_exactly_once(stores):
    registry = stores.registry()
    location = stores.storage()
    log = Log(registry)

    async def scenario() -> None:
        async with (
            started(registry, stores.open(location), Journal()) as one,
            started(registry, stores.open(location), Journal()) as two,
        ):
            # Concurrent writes: pages of different sizes, committed in a race by both workers.
            await asyncio.gather(*(log.mixed(2) for _ in range(4)))
            head = log.head()
            for worker in (one, two):
                assert await worker.runner("journal").wait_for(head, TIMEOUT)
            assert journal_of(one.store) == log.journal_events()
            assert len(log.journal_events()) == 16

    asyncio.run(scenario())


def test_a_watching_runner_follows_the_state_without_applying(stores):
    registry = stores.registry()
    location = stores.storage()
    log = Log(registry)
    watched = Journal()

    async def scenario() -> None:
        async with (
            started(registry, stores.open(location), watched, apply=False) as server,
            started(registry, stores.open(location), Journal()) as worker,
        ):
            head = await log.mixed(2)
            assert await worker.runner("journal").wait_for(head, TIMEOUT)
            assert await server.runner("journal").wait_for(head, TIMEOUT)
            assert watched.pages == 0
            [status] = await server.statuses()
            assert (status.position, status.lag_events, status.applied_here) == (head, 0, False)

    asyncio.run(scenario())


# --- Pause and resume ---------------------------------------------------------------------


def test_a_paused_runner_applies_nothing_and_resumes_where_it_was(stores):
    registry = stores.registry()
    store = stores.open(stores.storage())
    log = Log(registry)
    projection = Journal()

    async def scenario() -> None:
        async with started(registry, store, projection) as projections:
            runner = projections.runner("journal")
            paused_at = await log.mixed(2)
            assert await runner.wait_for(paused_at, TIMEOUT)

            await projections.pause("journal")
            await until(lambda: runner.status == PAUSED, "the runner saw the pause")
            applied, pages = journal_of(store), projection.pages
            head = await log.mixed(2)
            await asyncio.sleep(SETTLE)  # a running runner applies within milliseconds
            assert (journal_of(store), projection.pages) == (applied, pages)
            [status] = await projections.statuses()
            assert (status.status, status.position) == (PAUSED, paused_at)
            assert status.lag_events == head - paused_at

            await projections.resume("journal")
            assert await runner.wait_for(head, TIMEOUT)
            # Nothing written during the pause was missed, nothing before it repeated.
            assert journal_of(store) == log.journal_events()
            assert store.state("journal").status == RUNNING

    asyncio.run(scenario())


# --- Faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("recovery", ["resume", "restart"])
def test_a_failing_projection_faults_stops_trying_and_recovers(stores, recovery):
    registry = stores.registry()
    location = stores.storage()
    log = Log(registry)
    projection = Journal()

    async def scenario() -> None:
        async with started(registry, stores.open(location), projection) as projections:
            runner = projections.runner("journal")
            incident = await log.report()
            healthy = log.head()
            assert await runner.wait_for(healthy, TIMEOUT)

            projection.broken = True
            revision = await log.revise(incident)
            head = await log.mixed(1)
            assert not await runner.wait_for(head, TIMEOUT)

            # Stopped at the page that failed, with where and why recorded for operators.
            state = projections.store.state("journal")
            assert (state.status, state.position) == (FAULTED, healthy)
            assert state.error == (
                f"at position {healthy}: RuntimeError: cannot apply the revision at {revision}"
            )
            assert runner.failure == state.error
            [status] = await projections.statuses()
            assert (status.status, status.error) == (FAULTED, state.error)
            assert status.lag_events == head - healthy

            # It does not retry on its own, nor spin.
            pages, cpu = projection.pages, time.process_time()
            await asyncio.sleep(SETTLE)
            assert projection.pages == pages
            assert time.process_time() - cpu < SETTLE / 2
            assert journal_of(projections.store) == log.journal_events()[:1]

            projection.broken = False  # the code is fixed
            if recovery == "resume":
                await projections.resume("journal")
                # The runner learns of it at its next look at the state, which resume asks for
                # at once; until then wait_for still answers "faulted".
                await until(lambda: runner.status == RUNNING, "the runner saw the resume")
                assert await runner.wait_for(head, TIMEOUT)

        if recovery == "restart":
            async with started(registry, stores.open(location), projection) as projections:
                assert await projections.runner("journal").wait_for(head, TIMEOUT)

        again = stores.open(location)
        assert journal_of(again) == log.journal_events()
        state = again.state("journal")
        assert (state.status, state.error, state.position) == (RUNNING, "", head)

    asyncio.run(scenario())


# --- Reset --------------------------------------------------------------------------------


def test_a_reset_makes_a_started_runner_apply_again_from_there(stores):
    registry = stores.registry()
    store = stores.open(stores.storage())
    log = Log(registry)

    async def scenario() -> None:
        async with started(registry, store, Journal()) as projections:
            head = await log.mixed(3)
            assert await projections.runner("journal").wait_for(head, TIMEOUT)
            expected = log.journal_events()
            middle = expected[2][0]

            await projections.reset("journal", middle)
            await until(
                lambda: journal_of(store) == expected[3:], "it applied what follows the reset"
            )
            state = store.state("journal")
            assert (state.position, state.start_position) == (head, middle)

            await projections.reset("journal", 0)
            await until(lambda: journal_of(store) == expected, "it rebuilt the whole journal")
            assert store.state("journal").position == head

    asyncio.run(scenario())


# --- The Projections set ------------------------------------------------------------------


def test_statuses_report_position_head_and_lag(stores):
    registry = stores.registry()
    store = stores.open(stores.storage())
    log = Log(registry)
    journal_runner = runner_for(registry.backend, registry.mapper, store, Journal())
    statistics_runner = runner_for(registry.backend, registry.mapper, store, STATISTICS)
    projections = Projections(
        registry.backend, registry.mapper, store, [statistics_runner, journal_runner]
    )

    async def scenario() -> None:
        head = await log.mixed(2)
        try:
            behind = await projections.statuses()
            assert [s.name for s in behind] == ["journal", "statistics"]
            for status in behind:
                assert (status.status, status.error) == (RUNNING, "")
                assert (status.position, status.start_position, status.head) == (0, 0, head)
                assert status.lag_events == head
                # The oldest event not applied was recorded a moment ago.
                assert timedelta(0) < timedelta(seconds=status.lag_seconds) < timedelta(minutes=1)
                assert status.applied_here
            assert behind[1].description == STATISTICS.describe()

            run_to_head(journal_runner)
            await projections.pause("statistics")
            now = {s.name: s for s in await projections.statuses()}
            assert (now["journal"].position, now["journal"].head) == (head, head)
            assert (now["journal"].lag_events, now["journal"].lag_seconds) == (0, 0.0)
            assert now["journal"].status == RUNNING
            assert (now["statistics"].status, now["statistics"].lag_events) == (PAUSED, head)
            assert now["statistics"].lag_seconds > 0
        finally:
            await projections.stop()

    asyncio.run(scenario())


def test_a_read_runs_in_one_snapshot(stores):
    registry = stores.registry()
    location = stores.storage()
    store, writer = stores.open(location), stores.open(location)
    projections = Projections(
        registry.backend,
        registry.mapper,
        store,
        [runner_for(registry.backend, registry.mapper, store, Journal())],
    )

    def read_while_a_page_commits(tx: ViewTransaction) -> list[Any]:
        seen = [(tx.position("journal"), journal(tx))]
        with writer.transaction() as other:
            other.advance("journal", previous=0, position=5)
            other.execute("INSERT INTO test_journal VALUES (?, ?)", (5, "ShootingReported"))
        seen.append((tx.position("journal"), journal(tx)))
        return seen

    async def scenario() -> None:
        try:
            first, second = await projections.read(read_while_a_page_commits)
            assert first == second == (0, [])
            assert await projections.read(lambda tx: (tx.position("journal"), journal(tx))) == (
                5,
                [(5, "ShootingReported")],
            )
        finally:
            await projections.stop()

    asyncio.run(scenario())


def test_an_unknown_projection_is_not_found(stores):
    registry = stores.registry()
    location = stores.storage()
    store = stores.open(location)
    projections = Projections(
        registry.backend,
        registry.mapper,
        store,
        [runner_for(registry.backend, registry.mapper, store, Journal())],
    )

    async def scenario() -> None:
        try:
            for operation in (
                projections.pause,
                projections.resume,
                lambda name: projections.reset(name, 0),
            ):
                with pytest.raises(NotFoundError, match="projection nowhere not found"):
                    await operation("nowhere")
        finally:
            await projections.stop()

    with pytest.raises(NotFoundError):
        projections.runner("nowhere")
    asyncio.run(scenario())
    state = stores.open(location).state("journal")  # the known one was left alone
    assert (state.status, state.position, state.start_position) == (RUNNING, 0, 0)
