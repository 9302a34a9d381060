"""PoliceCommandService."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import command_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import command_service_pb2_grpc as pb_grpc

from service.api import requests as rq
from service.api import resources
from service.api.servicers.common import execute_write, history, read_id
from service.app.police_commands import PoliceCommands

Context = grpc.aio.ServicerContext[Any, Any]


class PoliceCommandServicer(pb_grpc.PoliceCommandServiceServicer):
    """Serves PoliceCommandService from the PoliceCommands application service."""

    def __init__(self, commands: PoliceCommands) -> None:
        self._commands = commands

    async def UnifyPoliceCommand(  # noqa: N802 - gRPC method name
        self, request: pb.UnifyPoliceCommandRequest, context: Context
    ) -> pb.UnifyPoliceCommandResponse:
        """Unify a police command."""
        result = await execute_write(
            request, context, rq.unify_police_command, self._commands.unify
        )
        return pb.UnifyPoliceCommandResponse(result=result)

    async def EndUnifiedCommand(  # noqa: N802
        self, request: pb.EndUnifiedCommandRequest, context: Context
    ) -> pb.EndUnifiedCommandResponse:
        """End a unified command."""
        result = await execute_write(request, context, rq.end_unified_command, self._commands.end)
        return pb.EndUnifiedCommandResponse(result=result)

    async def GetUnifiedCommand(  # noqa: N802
        self, request: pb.GetUnifiedCommandRequest, context: Context
    ) -> pb.GetUnifiedCommandResponse:
        """Return a unified command and its history."""
        command, events = await self._commands.get(read_id(request.command_id, "command_id"))
        return pb.GetUnifiedCommandResponse(
            command=resources.unified_command(command), history=history(events)
        )
