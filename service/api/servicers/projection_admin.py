"""ProjectionAdminService: list, pause, resume, rebuild and reset the read models."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from incident_registry_client.proto.incidents.v1 import projection_admin_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import (
    projection_admin_service_pb2_grpc as pb_grpc,
)

from projections.runtime import Projections, ProjectionStatus
from projections.store import FAULTED, PAUSED
from service.api.fields import FieldReader
from service.domain.errors import OutOfRangeError
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

STATES = {
    PAUSED: pb.PROJECTION_STATE_PAUSED,
    FAULTED: pb.PROJECTION_STATE_FAULTED,
}


def projection_info(status: ProjectionStatus) -> pb.ProjectionInfo:
    """The API form of a projection's status."""
    lag = Duration()
    lag.FromNanoseconds(int(status.lag_seconds * 1e9))
    updated_at = Timestamp()
    updated_at.FromDatetime(status.updated_at)
    return pb.ProjectionInfo(
        name=status.name,
        description=status.description,
        state=STATES.get(status.status, pb.PROJECTION_STATE_RUNNING),
        error=status.error,
        position=status.position,
        start_position=status.start_position,
        head=status.head,
        lag_events=status.lag_events,
        lag=lag,
        applied_here=status.applied_here,
        updated_at=updated_at,
    )


def _name(value: str) -> str:
    reader = FieldReader()
    reader.check(bool(value.strip()), "name", "is required (see ListProjections)")
    reader.raise_if_any()
    return value


class ProjectionAdminServicer(pb_grpc.ProjectionAdminServiceServicer):
    """Operations on the projections of the registry."""

    def __init__(self, projections: Projections, backend: EventStoreBackend) -> None:
        self._projections = projections
        self._backend = backend

    async def ListProjections(  # noqa: N802 - gRPC method name
        self, request: pb.ListProjectionsRequest, context: Context
    ) -> pb.ListProjectionsResponse:
        """Every projection with its position, lag and state."""
        statuses = await self._projections.statuses()
        return pb.ListProjectionsResponse(projections=[projection_info(s) for s in statuses])

    async def PauseProjection(  # noqa: N802 - gRPC method name
        self, request: pb.PauseProjectionRequest, context: Context
    ) -> pb.PauseProjectionResponse:
        """Pause a projection after the batch in hand."""
        name = _name(request.name)
        await self._projections.pause(name)
        return pb.PauseProjectionResponse(projection=await self._info(name))

    async def ResumeProjection(  # noqa: N802 - gRPC method name
        self, request: pb.ResumeProjectionRequest, context: Context
    ) -> pb.ResumeProjectionResponse:
        """Resume a paused or faulted projection."""
        name = _name(request.name)
        await self._projections.resume(name)
        return pb.ResumeProjectionResponse(projection=await self._info(name))

    async def RebuildProjection(  # noqa: N802 - gRPC method name
        self, request: pb.RebuildProjectionRequest, context: Context
    ) -> pb.RebuildProjectionResponse:
        """Empty a projection and rebuild it from the start of the log."""
        name = _name(request.name)
        await self._projections.reset(name, 0)
        return pb.RebuildProjectionResponse(projection=await self._info(name))

    async def ResetProjection(  # noqa: N802 - gRPC method name
        self, request: pb.ResetProjectionRequest, context: Context
    ) -> pb.ResetProjectionResponse:
        """Empty a projection and apply only the events after a position."""
        reader = FieldReader()
        reader.check(bool(request.name.strip()), "name", "is required (see ListProjections)")
        reader.count(request.position, "position")
        reader.raise_if_any()
        self._projections.runner(request.name)
        head = await asyncio.get_running_loop().run_in_executor(None, self._backend.head)
        if request.position > head:
            msg = f"is beyond the head of the log ({head})"
            raise OutOfRangeError("position", msg)
        await self._projections.reset(request.name, request.position)
        return pb.ResetProjectionResponse(projection=await self._info(request.name))

    async def _info(self, name: str) -> pb.ProjectionInfo:
        return projection_info(await self._projections.status(name))
