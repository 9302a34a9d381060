"""IncidentService."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import common_pb2
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2 as pb,
)
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2_grpc as pb_grpc,
)

from service.api import requests as rq
from service.api import resources
from service.api.fields import FieldReader
from service.api.servicers.common import execute_write, headers, history, read_id
from service.app.commands import ReportShooting
from service.app.incidents import Incidents
from service.app.results import WriteContext
from service.app.shooting_batches import MAX_BATCH_REPORTS, ShootingBatches
from service.domain.errors import FieldViolation, InvalidArgumentError

Context = grpc.aio.ServicerContext[Any, Any]


class IncidentServicer(pb_grpc.IncidentServiceServicer):
    """Serves IncidentService from the Incidents application service."""

    def __init__(self, incidents: Incidents, batches: ShootingBatches) -> None:
        self._incidents = incidents
        self._batches = batches

    async def ReportShooting(  # noqa: N802 - gRPC method name
        self, request: pb.ReportShootingRequest, context: Context
    ) -> pb.ReportShootingResponse:
        """Record a new shooting."""
        result = await execute_write(
            request, context, rq.report_shooting, self._incidents.report_shooting
        )
        return pb.ReportShootingResponse(result=result)

    async def ReviseCasualties(  # noqa: N802
        self, request: pb.ReviseCasualtiesRequest, context: Context
    ) -> pb.ReviseCasualtiesResponse:
        """Record new casualty totals."""
        result = await execute_write(
            request, context, rq.revise_casualties, self._incidents.revise_casualties
        )
        return pb.ReviseCasualtiesResponse(result=result)

    async def AmendIncident(  # noqa: N802
        self, request: pb.AmendIncidentRequest, context: Context
    ) -> pb.AmendIncidentResponse:
        """Record corrections."""
        result = await execute_write(request, context, rq.amend_incident, self._incidents.amend)
        return pb.AmendIncidentResponse(result=result)

    async def AttributeToGang(  # noqa: N802
        self, request: pb.AttributeToGangRequest, context: Context
    ) -> pb.AttributeToGangResponse:
        """Record an attribution."""
        result = await execute_write(
            request, context, rq.attribute_to_gang, self._incidents.attribute_to_gang
        )
        return pb.AttributeToGangResponse(result=result)

    async def RetractAttribution(  # noqa: N802
        self, request: pb.RetractAttributionRequest, context: Context
    ) -> pb.RetractAttributionResponse:
        """Record a retraction."""
        result = await execute_write(
            request, context, rq.retract_attribution, self._incidents.retract_attribution
        )
        return pb.RetractAttributionResponse(result=result)

    async def LinkIncidents(  # noqa: N802
        self, request: pb.LinkIncidentsRequest, context: Context
    ) -> pb.LinkIncidentsResponse:
        """Record a link between incidents."""
        result = await execute_write(request, context, rq.link_incidents, self._incidents.link)
        return pb.LinkIncidentsResponse(result=result)

    async def ErasePersonalData(  # noqa: N802
        self, request: pb.ErasePersonalDataRequest, context: Context
    ) -> pb.ErasePersonalDataResponse:
        """Erase the personal data recorded on an incident."""
        result = await execute_write(
            request, context, rq.erase_personal_data, self._incidents.erase_personal_data
        )
        return pb.ErasePersonalDataResponse(result=result)

    async def ReportShootings(  # noqa: N802
        self, request: pb.ReportShootingsRequest, context: Context
    ) -> pb.ReportShootingsResponse:
        """Record many shootings: all of them, or none when any is invalid."""
        if len(request.requests) > MAX_BATCH_REPORTS:
            msg = f"must hold 1 to {MAX_BATCH_REPORTS} shootings, not {len(request.requests)}"
            raise InvalidArgumentError([FieldViolation("requests", msg)])
        meta = headers(context)
        batch: list[tuple[ReportShooting, WriteContext]] = []
        found: list[FieldViolation] = []
        for index, item in enumerate(request.requests):
            reader = FieldReader()
            write = rq.write_context(item, meta, reader)
            # Invalid fields get placeholders: nothing is written when any field is invalid.
            batch.append((rq.report_shooting(item, reader), write))
            try:
                reader.raise_if_any()
            except InvalidArgumentError as err:
                found.extend(
                    FieldViolation(f"requests[{index}].{v.field}", v.description)
                    for v in err.violations
                )
        results = await self._batches.report(batch, found=found)
        return pb.ReportShootingsResponse(
            results=[
                common_pb2.WriteResult(
                    aggregate_id=str(result.aggregate_id),
                    version=result.version,
                    position=result.position,
                    replayed=result.replayed,
                )
                for result in results
            ]
        )

    async def GetIncident(  # noqa: N802
        self, request: pb.GetIncidentRequest, context: Context
    ) -> pb.GetIncidentResponse:
        """Return an incident and its history."""
        incident, events = await self._incidents.get(read_id(request.incident_id, "incident_id"))
        return pb.GetIncidentResponse(
            incident=resources.incident(incident), history=history(events)
        )
