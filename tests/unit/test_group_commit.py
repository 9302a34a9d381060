"""The group-commit writer under concurrency, in one process and across two on one file."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from service.app.commands import (
    EndUnifiedCommand,
    RegisterGang,
    RetractAttribution,
    ReviseCasualties,
)
from service.app.results import WriteResult
from service.domain.command import MunicipalityCommandSlot, slot_id
from service.domain.errors import RequestIdReusedError, RuleViolatedError
from service.store.base import AppendConflictError
from service.store.sqlite import SQLiteEventStore
from tests.unit.app_driver import App, registries

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence
    from pathlib import Path

    from service.store.base import IdempotencyRecord, PendingWrite

WAIT = 60  # seconds; a safety net against hanging, never reached when the code is right


class GatedStore(SQLiteEventStore):
    """Can hold the writer inside one batch, so that the next commands queue up behind it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batch_sizes: list[int] = []
        self.holding = threading.Event()
        self.released = threading.Event()
        self._armed = False

    def hold_next_batch(self) -> None:
        self.holding.clear()
        self.released.clear()
        self._armed = True

    def find_requests(self, request_ids: Sequence[str]) -> dict[str, IdempotencyRecord]:
        if self._armed:
            self._armed = False
            self.holding.set()
            assert self.released.wait(WAIT)
        return super().find_requests(request_ids)

    def append(self, writes: Sequence[PendingWrite]) -> list[int]:
        self.batch_sizes.append(len(writes))
        return super().append(writes)


class RacingStore(SQLiteEventStore):
    """Can make its next append wait at a barrier shared with another process's store."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.barrier: threading.Barrier | None = None
        self.conflicts = 0

    def append(self, writes: Sequence[PendingWrite]) -> list[int]:
        barrier, self.barrier = self.barrier, None
        if barrier is not None:
            barrier.wait(WAIT)
        try:
            return super().append(writes)
        except AppendConflictError:
            self.conflicts += 1
            raise


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    with registries(tmp_path / "db.sqlite") as open_:
        yield open_


@pytest.fixture
def gated(tmp_path: Path, open_app: Callable[..., App]) -> tuple[App, GatedStore]:
    store = GatedStore(tmp_path / "db.sqlite")
    return open_app(store), store


def in_one_batch(app: App, store: GatedStore, *calls: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run the calls as one batch: the writer is held on a plug until all have been queued."""

    async def scenario() -> list[Any]:
        store.hold_next_batch()
        plug = asyncio.ensure_future(
            app.registry.gangs.register(RegisterGang(name="Plug"), app.ctx())
        )
        assert await asyncio.to_thread(store.holding.wait, WAIT)

        async def open_gate() -> None:  # runs once every call before it has been queued
            store.released.set()

        *results, _ = await asyncio.gather(*calls, open_gate(), return_exceptions=True)
        await plug
        return results

    return app.run(scenario())


def revise(app: App, incident_id: Any, killed: int, expected: int | None = None) -> Any:
    command = ReviseCasualties(incident_id, killed, 0, "update")
    return app.registry.incidents.revise_casualties(command, app.ctx(expected_version=expected))


def test_200_concurrent_reports_get_distinct_positions(open_app: Callable[..., App]) -> None:
    app = open_app()

    async def report_all() -> list[WriteResult]:
        calls = [
            app.registry.incidents.report_shooting(app.shooting(killed=i % 3), app.ctx())
            for i in range(200)
        ]
        return await asyncio.gather(*calls)

    results = app.run(report_all())
    assert sorted(r.position for r in results) == list(range(1, 201))
    assert len({r.aggregate_id for r in results}) == 200
    assert {r.version for r in results} == {1}
    assert app.head() == 200


def test_commands_queued_behind_a_transaction_are_committed_in_one(
    gated: tuple[App, GatedStore],
) -> None:
    app, store = gated
    calls = [app.registry.incidents.report_shooting(app.shooting(), app.ctx()) for _ in range(50)]
    results = in_one_batch(app, store, *calls)
    # The plug's transaction, then a single one for all fifty reports.
    assert store.batch_sizes == [1, 50]
    assert sorted(r.position for r in results) == list(range(2, 52))
    assert app.head() == 51


def test_a_command_refused_while_deciding_leaves_the_rest_of_its_batch_alone(
    gated: tuple[App, GatedStore],
) -> None:
    app, store = gated
    incident_id, gang_id = app.report(), app.gang()
    retract = RetractAttribution(incident_id, gang_id, "was never attributed")
    ok_before, refused, ok_after = in_one_batch(
        app,
        store,
        revise(app, incident_id, killed=1),
        app.registry.incidents.retract_attribution(retract, app.ctx()),
        app.registry.incidents.report_shooting(app.shooting(), app.ctx()),
    )
    assert isinstance(refused, RuleViolatedError)
    assert refused.rule == "attribution_exists"
    assert (ok_before.version, ok_after.version) == (2, 1)
    assert store.batch_sizes[-1] == 2
    incident, history = app.run(app.registry.incidents.get(incident_id))
    # Only the revision reached the incident; the refused retraction left no trace.
    assert incident.killed == 1
    assert [type(r.event).__name__ for r in history] == ["ShootingReported", "CasualtiesRevised"]


def test_two_commands_on_one_aggregate_in_one_batch_both_apply(
    gated: tuple[App, GatedStore],
) -> None:
    app, store = gated
    incident_id = app.report()
    # The second command expects the version left by the first, still uncommitted.
    first, second = in_one_batch(
        app, store, revise(app, incident_id, killed=1), revise(app, incident_id, 2, expected=2)
    )
    assert (first.version, second.version) == (2, 3)
    assert second.position == first.position + 1
    assert store.batch_sizes[-1] == 2
    incident, _ = app.run(app.registry.incidents.get(incident_id))
    assert (incident.killed, incident.version) == (2, 3)


@pytest.mark.parametrize("batched", [True, False], ids=["one batch", "any batches"])
def test_a_request_id_sent_twice_at_once_writes_once(
    gated: tuple[App, GatedStore], batched: bool
) -> None:
    app, store = gated
    command = app.shooting(description="same request")
    calls = [app.registry.incidents.report_shooting(command, app.ctx("r-1")) for _ in range(2)]
    head = app.head()

    async def together() -> list[WriteResult]:
        return await asyncio.gather(*calls)

    results = in_one_batch(app, store, *calls) if batched else app.run(together())
    head_after = app.head() - (1 if batched else 0)  # not counting the plug
    assert sorted(r.replayed for r in results) == [False, True]
    assert len({(r.aggregate_id, r.version, r.position) for r in results}) == 1
    assert head_after == head + 1


def test_a_request_id_reused_within_one_batch_is_refused(gated: tuple[App, GatedStore]) -> None:
    app, store = gated
    first, second = in_one_batch(
        app,
        store,
        app.registry.incidents.report_shooting(app.shooting(killed=1), app.ctx("r-1")),
        app.registry.incidents.report_shooting(app.shooting(killed=2), app.ctx("r-1")),
    )
    assert isinstance(first, WriteResult)
    assert isinstance(second, RequestIdReusedError)


def test_later_commands_of_a_batch_see_what_earlier_ones_decided(
    gated: tuple[App, GatedStore],
) -> None:
    app, store = gated
    seize = app.registry.asset_cases.record_seizure
    unify = app.registry.police_commands.unify
    first_seizure, second_seizure, unified, refused = in_one_batch(
        app,
        store,
        seize(app.seizure(case_reference="NEW-1"), app.ctx()),
        seize(app.seizure(case_reference="NEW-1"), app.ctx()),
        unify(app.unification("21001"), app.ctx()),
        unify(app.unification(police_zone_codes=("5341",)), app.ctx()),
    )
    # The case opened by the first seizure receives the second; the slot taken by the
    # first unification refuses the second, though neither was committed yet.
    assert first_seizure.aggregate_id == second_seizure.aggregate_id
    assert (first_seizure.version, second_seizure.version, unified.version) == (2, 3, 1)
    assert isinstance(refused, RuleViolatedError)
    assert store.batch_sizes[-1] == 3


def unify_race(a: App, b: App, code: str) -> tuple[WriteResult, RuleViolatedError]:
    """Both processes try to unify `code` at once; return the winner's result and the error."""

    async def race() -> list[Any]:
        outcomes = await asyncio.gather(
            a.registry.police_commands.unify(a.unification(code), a.ctx()),
            b.registry.police_commands.unify(b.unification(code), b.ctx()),
            return_exceptions=True,
        )
        return list(outcomes)

    outcomes = a.run(race())
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert kinds == {"WriteResult": 1, "RuleViolatedError": 1}, outcomes
    (won,) = (o for o in outcomes if isinstance(o, WriteResult))
    (lost,) = (o for o in outcomes if isinstance(o, RuleViolatedError))
    return won, lost


@pytest.mark.parametrize("forced", [True, False], ids=["both decide first", "free race"])
def test_two_processes_never_unify_the_same_municipality_twice(
    tmp_path: Path, open_app: Callable[..., App], forced: bool
) -> None:
    stores = [RacingStore(tmp_path / "db.sqlite") for _ in range(2)]
    a, b = (open_app(store) for store in stores)
    for round_ in range(20):
        if forced:
            # Neither may append before both have decided on the same, free slot.
            stores[0].barrier = stores[1].barrier = threading.Barrier(2)
        won, lost = unify_race(a, b, "21013")
        assert lost.rule == "one_active_command_per_municipality"
        ender = (a, b)[round_ % 2]
        ender.run(
            ender.registry.police_commands.end(
                EndUnifiedCommand(won.aggregate_id, "next round"), ender.ctx()
            )
        )
    if forced:
        # Every round, the loser's first append really collided with the winner's.
        assert sum(s.conflicts for s in stores) == 20
    slot = a.registry.loader.load(slot_id("21013"))
    assert isinstance(slot, MunicipalityCommandSlot)
    # Created once, then assigned and released once per round: never assigned twice.
    assert (slot.version, slot.command_id) == (41, None)


def test_two_processes_sending_one_request_id_at_once_write_it_once(
    tmp_path: Path, open_app: Callable[..., App]
) -> None:
    stores = [RacingStore(tmp_path / "db.sqlite") for _ in range(2)]
    a, b = (open_app(store) for store in stores)
    stores[0].barrier = stores[1].barrier = threading.Barrier(2)
    command = a.shooting(description="retried by a load balancer")

    async def race() -> list[WriteResult]:
        results = await asyncio.gather(
            a.registry.incidents.report_shooting(command, a.ctx("r-1")),
            b.registry.incidents.report_shooting(command, b.ctx("r-1")),
        )
        return list(results)

    results = a.run(race())
    # Both decided; the request id's record made the second append collide and replay.
    assert sum(s.conflicts for s in stores) == 1
    assert sorted(r.replayed for r in results) == [False, True]
    assert len({(r.aggregate_id, r.position) for r in results}) == 1
    assert a.head() == 1


def test_a_failing_commit_listener_does_not_fail_the_commit(tmp_path):
    # A follower whose event loop has gone must not turn an accepted write into an error.
    store = SQLiteEventStore(tmp_path / "listener.sqlite")

    def broken(head: int) -> None:
        raise RuntimeError("event loop is closed")

    store.notifier.add(broken)
    seen: list[int] = []
    store.notifier.add(seen.append)
    store.notifier.notify(7)
    assert seen == [7]
    store.close()
