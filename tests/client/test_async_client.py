"""AsyncRegistryClient through a real server: unary calls, paging, streams and errors."""

from __future__ import annotations

import asyncio

import pytest
from incident_registry_client import (
    AreaKind,
    AsyncRegistryClient,
    CaughtUp,
    ExportFinished,
    NotFoundError,
    PeriodKind,
    ProjectionState,
    RecordedEvent,
    ShootingReport,
    TimePrecision,
    Weapon,
    WeaponKind,
)

from tests.client.conftest import ACTOR, ANDERLECHT, FAST_RETRY, IXELLES, hours_ago


def shooting(**overrides):
    fields = {
        "occurred_at": hours_ago(2),
        "occurred_at_precision": TimePrecision.MINUTE,
        "municipality_code": ANDERLECHT,
        "weapons": [Weapon(WeaponKind.HANDGUN)],
    }
    fields.update(overrides)
    return fields


def test_the_async_client_writes_reads_pages_and_streams(server):
    async def scenario():
        async with AsyncRegistryClient(server.target, actor=ACTOR, retry=FAST_RETRY) as registry:
            first = await registry.report_shooting(**shooting(killed=1))
            batch = await registry.report_shootings(
                shootings=[
                    ShootingReport(**shooting(municipality_code=IXELLES)),
                    ShootingReport(**shooting()),
                ]
            )
            gang = await registry.register_gang(name="Clan X")
            fetched = await registry.get_incident(incident_id=first.aggregate_id)
            assert fetched.state.killed == 1
            assert fetched.history[0].metadata.actor == ACTOR
            assert (await registry.get_gang(gang_id=gang.aggregate_id)).state.name == "Clan X"

            head = await registry.get_head()
            assert head.position == 4
            events = [e async for e in registry.iter_all(page_size=1)]
            assert [e.position for e in events] == [1, 2, 3, 4]
            listed = [i async for i in registry.iter_incidents(page_size=1, min_position=4)]
            assert len(listed) == 3
            statistics = await registry.get_area_statistics(
                area_kind=AreaKind.MUNICIPALITY,
                period_kind=PeriodKind.YEAR,
                min_position=batch[-1].position,
            )
            assert sum(row.incidents for row in statistics.rows) == 3

            async with registry.subscribe(after_position=2) as subscription:
                received = []
                async for item in subscription:
                    received.append(item)
                    if isinstance(item, CaughtUp):
                        break
            assert [i.position for i in received if isinstance(i, RecordedEvent)] == [3, 4]

            async with registry.watch_statistics(
                area_kind=AreaKind.POLICE_ZONE, period_kind=PeriodKind.MONTH
            ) as watch:
                snapshot = await watch.__anext__()
            assert snapshot.snapshot
            assert snapshot.totals.incidents == 3

            exported = [item async for item in registry.export_events()]
            assert exported[-1] == ExportFinished(position=4, exported=4)

            paused = await registry.pause_projection(name="waves")
            assert paused.state is ProjectionState.PAUSED
            await registry.resume_projection(name="waves")

            with pytest.raises(NotFoundError):
                await registry.get_asset_case(case_id=first.aggregate_id)

    asyncio.run(scenario())


def test_the_async_client_opens_its_channel_in_the_running_loop(server):
    registry = AsyncRegistryClient(server.target)  # made outside any event loop

    async def use():
        try:
            return (await registry.get_head()).position
        finally:
            await registry.close()

    assert asyncio.run(use()) == 0


def test_closing_an_async_subscription_ends_its_iteration(server):
    async def scenario():
        async with AsyncRegistryClient(server.target) as registry:
            subscription = registry.subscribe(from_end=True)
            assert await subscription.__anext__() == CaughtUp(0)
            waiting = asyncio.ensure_future(subscription.__anext__())
            await asyncio.sleep(0.05)
            await subscription.aclose()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(waiting, 5)
            assert subscription.closed

    asyncio.run(scenario())
