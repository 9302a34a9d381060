"""GangService."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import gang_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import gang_service_pb2_grpc as pb_grpc

from service.api import requests as rq
from service.api import resources
from service.api.servicers.common import execute_write, history, read_id
from service.app.gangs import Gangs

Context = grpc.aio.ServicerContext[Any, Any]


class GangServicer(pb_grpc.GangServiceServicer):
    """Serves GangService from the Gangs application service."""

    def __init__(self, gangs: Gangs) -> None:
        self._gangs = gangs

    async def RegisterGang(  # noqa: N802 - gRPC method name
        self, request: pb.RegisterGangRequest, context: Context
    ) -> pb.RegisterGangResponse:
        """Register a gang."""
        result = await execute_write(request, context, rq.register_gang, self._gangs.register)
        return pb.RegisterGangResponse(result=result)

    async def AddGangAlias(  # noqa: N802
        self, request: pb.AddGangAliasRequest, context: Context
    ) -> pb.AddGangAliasResponse:
        """Add an alias."""
        result = await execute_write(request, context, rq.add_gang_alias, self._gangs.add_alias)
        return pb.AddGangAliasResponse(result=result)

    async def GetGang(  # noqa: N802
        self, request: pb.GetGangRequest, context: Context
    ) -> pb.GetGangResponse:
        """Return a gang and its history."""
        gang, events = await self._gangs.get(read_id(request.gang_id, "gang_id"))
        return pb.GetGangResponse(gang=resources.gang(gang), history=history(events))
