"""Idempotent writes: a retried request id replays its first outcome and writes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service.app.commands import AddGangAlias, RegisterGang, ReviseCasualties
from service.app.results import WriteResult
from service.domain.errors import RequestIdReusedError
from tests.unit.app_driver import App, registries

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    with registries(tmp_path / "db.sqlite") as open_:
        yield open_


@pytest.fixture
def app(open_app: Callable[..., App]) -> App:
    return open_app()


def test_retrying_a_request_returns_the_original_result_and_writes_nothing(app: App) -> None:
    app.report()
    command = app.shooting(killed=1)
    first = app.run(app.registry.incidents.report_shooting(command, app.ctx("r-1")))
    head = app.head()
    again = app.run(app.registry.incidents.report_shooting(command, app.ctx("r-1")))
    assert not first.replayed
    assert again.replayed
    assert (again.aggregate_id, again.version, again.position) == (
        first.aggregate_id, first.version, first.position,
    )  # fmt: skip
    assert app.head() == head


def test_a_retry_replays_even_after_the_aggregate_moved_on(app: App) -> None:
    incident_id = app.report()
    revise = app.registry.incidents.revise_casualties
    command = ReviseCasualties(incident_id, 1, 0, "died")
    first = app.run(revise(command, app.ctx("r-1")))
    app.run(revise(ReviseCasualties(incident_id, 2, 0, "died too"), app.ctx()))
    again = app.run(revise(command, app.ctx("r-1")))
    # Still the outcome of the first attempt: version 2, not a new version 4.
    assert (again.version, again.position, again.replayed) == (2, first.position, True)
    incident, _ = app.run(app.registry.incidents.get(incident_id))
    assert incident.killed == 2


def test_a_retry_of_a_command_that_could_not_run_twice_still_succeeds(app: App) -> None:
    # Adding the same alias twice breaks a rule, but a retry is recognised before deciding.
    gang_id = app.gang()
    command = AddGangAlias(gang_id, "Crowns")
    first = app.run(app.registry.gangs.add_alias(command, app.ctx("r-1")))
    again = app.run(app.registry.gangs.add_alias(command, app.ctx("r-1")))
    assert again.replayed
    assert again.position == first.position


def test_a_multi_stream_write_is_replayed_as_a_whole(app: App) -> None:
    command = app.unification(police_zone_codes=("5341",))
    first = app.run(app.registry.police_commands.unify(command, app.ctx("r-1")))
    head = app.head()
    again = app.run(app.registry.police_commands.unify(command, app.ctx("r-1")))
    # Without idempotency the retry would hit its own municipalities' slots.
    assert again.replayed
    assert again.aggregate_id == first.aggregate_id
    assert app.head() == head


@pytest.mark.parametrize(
    "second",
    ["other facts", "other expected version", "other command type"],
)
def test_reusing_a_request_id_for_a_different_request_is_refused(app: App, second: str) -> None:
    command = app.shooting()
    app.run(app.registry.incidents.report_shooting(command, app.ctx("r-1")))
    head = app.head()
    calls = {
        "other facts": lambda: app.registry.incidents.report_shooting(
            app.shooting(killed=1), app.ctx("r-1")
        ),
        "other expected version": lambda: app.registry.incidents.report_shooting(
            command, app.ctx("r-1", expected_version=0)
        ),
        "other command type": lambda: app.registry.gangs.register(
            RegisterGang(name="Kings"), app.ctx("r-1")
        ),
    }
    with pytest.raises(RequestIdReusedError) as info:
        app.run(calls[second]())
    assert info.value.request_id == "r-1"
    assert app.head() == head


def test_idempotency_survives_closing_and_reopening_the_registry(
    open_app: Callable[..., App],
) -> None:
    before = open_app()
    command = before.seizure()
    first = before.run(before.registry.asset_cases.record_seizure(command, before.ctx("r-1")))
    before.registry.close()

    # A new process on the same file: same answer, nothing written.
    after = open_app()
    head = after.head()
    again = after.run(after.registry.asset_cases.record_seizure(command, after.ctx("r-1")))
    assert again == WriteResult(first.aggregate_id, first.version, first.position, replayed=True)
    with pytest.raises(RequestIdReusedError):
        after.run(
            after.registry.asset_cases.record_seizure(
                after.seizure(description="different"), after.ctx("r-1")
            )
        )
    assert after.head() == head
