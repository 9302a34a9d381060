"""StatisticsService."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2_grpc as pb_grpc

from projections.runner import StatisticsRunner
from service.api.fields import FieldReader
from service.domain.errors import NotCaughtUpError, OutOfRangeError, RuleViolatedError
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
DEFAULT_WAIT_SECONDS = 5.0


class StatisticsServicer(pb_grpc.StatisticsServiceServicer):
    """Serves StatisticsService from the statistics projection."""

    def __init__(self, runner: StatisticsRunner, backend: EventStoreBackend) -> None:
        self._runner = runner
        self._backend = backend

    async def GetAreaStatistics(  # noqa: N802 - gRPC method name
        self, request: pb.GetAreaStatisticsRequest, context: Context
    ) -> pb.GetAreaStatisticsResponse:
        """Return rows of the statistics view, once it includes `min_position`."""
        reader = FieldReader()
        area_kind = AREA_KINDS.get(request.area_kind)
        reader.check(area_kind is not None, "area_kind", "must be MUNICIPALITY or POLICE_ZONE")
        period_kind = PERIOD_KINDS.get(request.period_kind)
        reader.check(period_kind is not None, "period_kind", "must be DAY, ISO_WEEK, MONTH or YEAR")
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        assert area_kind is not None
        assert period_kind is not None
        if self._runner.failure is not None:
            msg = f"the statistics projection stopped: {self._runner.failure}"
            raise RuleViolatedError("projection_running", "projection/statistics", msg)
        if request.min_position > self._runner.position:
            await self._wait(request.min_position, context)
        position = self._runner.position
        rows = await self._runner.query(
            area_kind,
            list(request.area_codes),
            period_kind,
            request.from_period,
            request.to_period,
        )
        return pb.GetAreaStatisticsResponse(
            rows=[
                pb.AreaPeriodStatistics(
                    area_kind=AREA_NUMBERS[row.area_kind],
                    area_code=row.area_code,
                    period_kind=PERIOD_NUMBERS[row.period_kind],
                    period=row.period,
                    incidents=row.incidents,
                    killed=row.killed,
                    injured=row.injured,
                )
                for row in rows
            ],
            position=position,
        )

    async def _wait(self, min_position: int, context: Context) -> None:
        head = await asyncio.get_running_loop().run_in_executor(None, self._backend.head)
        if min_position > head:
            msg = f"is beyond the head of the log ({head})"
            raise OutOfRangeError("min_position", msg)
        remaining = context.time_remaining()
        timeout = DEFAULT_WAIT_SECONDS if remaining is None else max(0.0, remaining - 0.05)
        if not await self._runner.wait_for(min_position, timeout):
            if self._runner.failure is not None:
                msg = f"the statistics projection stopped: {self._runner.failure}"
                raise RuleViolatedError("projection_running", "projection/statistics", msg)
            msg = (
                f"the statistics reflect position {self._runner.position}, "
                f"not yet {min_position}; retry"
            )
            raise NotCaughtUpError(msg)
