"""The unified commands model as a fold, and its rows on an SQLite view store.

Events are stand-ins with the attributes the projection reads (the domain's events carry the
same names), so the fold needs neither a log nor a running application.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from projections.base import Recorded
from projections.commands_model import (
    ACTIVE,
    ENDED,
    CommandsProjection,
    active_commands,
    from_micros,
    list_commands,
    next_command,
    to_micros,
)
from projections.store import sqlite_store

MAY_1 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
RECORDED = datetime(2024, 5, 1, 7, 0, 0, 123_456, tzinfo=UTC)


def unified(
    command_id: UUID, position: int, codes: tuple[str, ...], starts_at: datetime = MAY_1
) -> Recorded:
    """A PoliceCommandUnified stand-in."""
    event = SimpleNamespace(
        occurred_at=starts_at - timedelta(hours=1),
        municipality_codes=codes,
        police_zone_codes=("5341",),
        lead_authority="Mayor of Anderlecht",
        reason="wave of shootings",
        starts_at=starts_at,
        planned_end_at=None,
        triggering_incident_ids=(UUID(int=7),),
        timestamp=RECORDED,
    )
    return Recorded(
        position=position,
        event_type="PoliceCommandUnified",
        originator_id=command_id,
        originator_version=1,
        event=event,
    )


def ended(command_id: UUID, position: int, at: datetime) -> Recorded:
    """A UnifiedCommandEnded stand-in."""
    event = SimpleNamespace(occurred_at=at, reason="calm restored", timestamp=at)
    return Recorded(
        position=position,
        event_type="UnifiedCommandEnded",
        originator_id=command_id,
        originator_version=2,
        event=event,
    )


def test_a_unification_makes_an_active_command_and_an_end_ends_it():
    command_id = uuid4()
    active = next_command(None, unified(command_id, 4, ("21001", "21007")))
    assert active is not None
    assert (active.command_id, active.position, active.version) == (command_id, 4, 1)
    assert (active.status, active.ended_at, active.end_reason) == (ACTIVE, None, "")
    assert active.municipality_codes == ("21001", "21007")
    assert active.triggering_incident_ids == (UUID(int=7),)
    assert active.recorded_at == active.updated_at == RECORDED

    done = next_command(active, ended(command_id, 9, MAY_1 + timedelta(days=2)))
    assert done is not None
    assert (done.status, done.version, done.end_reason) == (ENDED, 2, "calm restored")
    assert done.ended_at == done.updated_at == MAY_1 + timedelta(days=2)
    # What the unification said stays as it was.
    assert (done.position, done.recorded_at, done.starts_at) == (4, RECORDED, MAY_1)


def test_the_end_of_a_command_the_model_never_saw_is_ignored():
    assert next_command(None, ended(uuid4(), 3, MAY_1)) is None


@given(st.datetimes(timezones=st.just(UTC)))
def test_times_are_stored_as_epoch_microseconds_without_loss(moment):
    assert from_micros(to_micros(moment)) == moment


def test_batches_write_commands_and_the_municipalities_they_cover(tmp_path):
    projection = CommandsProjection()
    store = sqlite_store(tmp_path / "views.sqlite")
    store.install(projection.name, projection.version, projection.schema, projection.tables)
    first, second, third = uuid4(), uuid4(), uuid4()
    try:
        # One batch unifies and ends a command; the next ends one of an earlier batch.
        with store.transaction() as tx:
            projection.apply(
                tx,
                [
                    unified(first, 1, ("21001", "21007")),
                    ended(first, 2, MAY_1 + timedelta(days=1)),
                    unified(second, 3, ("21001",), MAY_1 + timedelta(days=2)),
                    unified(third, 4, ("21004",), MAY_1 + timedelta(days=2)),
                ],
            )
        with store.transaction() as tx:
            projection.apply(tx, [ended(third, 5, MAY_1 + timedelta(days=3))])
        with store.transaction(write=False) as tx:
            listing = list_commands(tx)
            active = active_commands(tx)
            limited = list_commands(tx, municipality_codes=["21007"], active_only=False)
    finally:
        store.close()
    assert [(c.command_id, c.status) for c in listing] == [
        (third, ENDED),  # same start as the second: the later unification first
        (second, ACTIVE),
        (first, ENDED),
    ]
    assert {code: c.command_id for code, c in active.items()} == {"21001": second}
    assert [c.command_id for c in limited] == [first]
