"""StatisticsService."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2_grpc as pb_grpc

from projections.runtime import Projections
from projections.statistics import NAME
from projections.statistics_model import StatisticsRow, query_statistics
from service.api.catch_up import wait_until_caught_up
from service.api.fields import FieldReader
from service.api.servicers.incident_breakdown import get_incident_breakdown
from service.domain.errors import (
    RuleViolatedError,
    StoreUnavailableError,
    SubscriberTooSlowError,
)
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

AREA_KINDS = {pb.AREA_KIND_MUNICIPALITY: "municipality", pb.AREA_KIND_POLICE_ZONE: "police_zone"}
PERIOD_KINDS = {
    pb.PERIOD_KIND_DAY: "day",
    pb.PERIOD_KIND_ISO_WEEK: "week",
    pb.PERIOD_KIND_MONTH: "month",
    pb.PERIOD_KIND_YEAR: "year",
}
AREA_NUMBERS = {name: number for number, name in AREA_KINDS.items()}
PERIOD_NUMBERS = {name: number for number, name in PERIOD_KINDS.items()}
WATCH_RECHECK_SECONDS = 5.0
"""A watch re-reads its selection at least this often, even when the position did not move."""
WATCH_STALL_SECONDS = 30.0
"""A watcher that reads nothing this long is ended with RESOURCE_EXHAUSTED."""


class StatisticsServicer(pb_grpc.StatisticsServiceServicer):
    """Serves StatisticsService from the statistics projection."""

    def __init__(self, projections: Projections, backend: EventStoreBackend) -> None:
        self._projections = projections
        self._backend = backend

    async def GetAreaStatistics(  # noqa: N802 - gRPC method name
        self, request: pb.GetAreaStatisticsRequest, context: Context
    ) -> pb.GetAreaStatisticsResponse:
        """Return rows of the statistics view, once it includes `min_position`."""
        selection = _selection(request)
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, rows = await self._read(selection)
        return pb.GetAreaStatisticsResponse(rows=[_row(r) for r in rows], position=position)

    async def WatchStatistics(  # type: ignore[override]  # noqa: N802 - gRPC method name
        self, request: pb.WatchStatisticsRequest, context: Context
    ) -> None:
        """Stream a snapshot of the selection, then the rows each new position changed.

        Messages are written one at a time: a watcher that stops reading stalls the write, and
        after WATCH_STALL_SECONDS its stream ends with RESOURCE_EXHAUSTED.
        """
        selection = _selection(request)
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        runner = self._projections.runner(NAME)
        shown: dict[tuple[str, str], StatisticsRow] | None = None
        while True:
            position, rows = await self._read(selection)
            current = {(r.area_code, r.period): r for r in rows}
            changed = _changes(shown, current)
            if shown is None or changed:
                await _write(
                    context,
                    pb.WatchStatisticsResponse(
                        snapshot=shown is None,
                        rows=[_row(r) for r in changed],
                        totals=pb.WatchTotals(
                            incidents=sum(r.incidents for r in rows),
                            killed=sum(r.killed for r in rows),
                            injured=sum(r.injured for r in rows),
                        ),
                        position=position,
                    ),
                )
            shown = current
            await runner.wait_for_change(position, WATCH_RECHECK_SECONDS)
            if runner.closing:
                msg = "the server is shutting down; watch again for a fresh snapshot"
                raise StoreUnavailableError(msg)
            if runner.failure is not None:
                msg = f"the statistics projection stopped: {runner.failure}"
                raise RuleViolatedError("projection_running", f"projection/{NAME}", msg)

    async def _read(self, selection: _Selection) -> tuple[int, list[StatisticsRow]]:
        return await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                query_statistics(
                    tx,
                    selection.area_kind,
                    selection.area_codes,
                    selection.period_kind,
                    from_period=selection.from_period,
                    to_period=selection.to_period,
                ),
            )
        )

    async def GetIncidentBreakdown(  # noqa: N802 - gRPC method name
        self, request: pb.GetIncidentBreakdownRequest, context: Context
    ) -> pb.GetIncidentBreakdownResponse:
        """Return a breakdown of the selected incidents, from the incidents read model."""
        return await get_incident_breakdown(self._projections, self._backend, request, context)


async def _write(context: Context, message: pb.WatchStatisticsResponse) -> None:
    try:
        async with asyncio.timeout(WATCH_STALL_SECONDS):
            await context.write(message)
    except TimeoutError:
        msg = f"the watcher read nothing for {WATCH_STALL_SECONDS:g} s; watch again"
        raise SubscriberTooSlowError(msg) from None


@dataclass(frozen=True)
class _Selection:
    area_kind: str
    area_codes: list[str]
    period_kind: str
    from_period: str
    to_period: str


def _selection(request: pb.GetAreaStatisticsRequest | pb.WatchStatisticsRequest) -> _Selection:
    reader = FieldReader()
    area_kind = AREA_KINDS.get(request.area_kind)
    reader.check(area_kind is not None, "area_kind", "must be MUNICIPALITY or POLICE_ZONE")
    period_kind = PERIOD_KINDS.get(request.period_kind)
    reader.check(period_kind is not None, "period_kind", "must be DAY, ISO_WEEK, MONTH or YEAR")
    reader.count(request.min_position, "min_position")
    reader.raise_if_any()
    assert area_kind is not None
    assert period_kind is not None
    return _Selection(
        area_kind,
        list(request.area_codes),
        period_kind,
        request.from_period,
        request.to_period,
    )


def _changes(
    shown: dict[tuple[str, str], StatisticsRow] | None,
    current: dict[tuple[str, str], StatisticsRow],
) -> list[StatisticsRow]:
    """Every row on a snapshot; else the rows that changed, and zeros for those now gone."""
    if shown is None:
        return list(current.values())
    changed = [row for key, row in current.items() if shown.get(key) != row]
    gone = [replace(row, incidents=0, killed=0, injured=0) for key, row in shown.items()]
    changed.extend(row for row in gone if (row.area_code, row.period) not in current)
    return sorted(changed, key=lambda r: (r.area_code, r.period))


def _row(row: StatisticsRow) -> pb.AreaPeriodStatistics:
    return pb.AreaPeriodStatistics(
        area_kind=AREA_NUMBERS[row.area_kind],
        area_code=row.area_code,
        period_kind=PERIOD_NUMBERS[row.period_kind],
        period=row.period,
        incidents=row.incidents,
        killed=row.killed,
        injured=row.injured,
    )
