"""IncidentService."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2 as pb,
)
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2_grpc as pb_grpc,
)

from service.api import requests as rq
from service.api import resources
from service.api.servicers.common import execute_write, history, read_id
from service.app.incidents import Incidents

Context = grpc.aio.ServicerContext[Any, Any]


class IncidentServicer(pb_grpc.IncidentServiceServicer):
    """Serves IncidentService from the Incidents application service."""

    def __init__(self, incidents: Incidents) -> None:
        self._incidents = incidents

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

    async def GetIncident(  # noqa: N802
        self, request: pb.GetIncidentRequest, context: Context
    ) -> pb.GetIncidentResponse:
        """Return an incident and its history."""
        incident, events = await self._incidents.get(read_id(request.incident_id, "incident_id"))
        return pb.GetIncidentResponse(
            incident=resources.incident(incident), history=history(events)
        )
