"""StatisticsService."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2_grpc as pb_grpc

from projections.runtime import Projections
from projections.statistics import NAME
from projections.statistics_model import query_statistics
from service.api.catch_up import wait_until_caught_up
from service.api.fields import FieldReader
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


class StatisticsServicer(pb_grpc.StatisticsServiceServicer):
    """Serves StatisticsService from the statistics projection."""

    def __init__(self, projections: Projections, backend: EventStoreBackend) -> None:
        self._projections = projections
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
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, rows = await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                query_statistics(
                    tx,
                    area_kind,
                    list(request.area_codes),
                    period_kind,
                    from_period=request.from_period,
                    to_period=request.to_period,
                ),
            )
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
