"""The services that serve read models (projections), registered on a server in one place."""

from __future__ import annotations

import grpc
from incident_registry_client.proto.incidents.v1 import (
    projection_admin_service_pb2,
    statistics_service_pb2,
)

from projections.runtime import Projections
from service.api.handlers import add_service
from service.api.servicers.projection_admin import ProjectionAdminServicer
from service.api.servicers.statistics import StatisticsServicer
from service.app.registry import Registry

STATISTICS_SERVICE = statistics_service_pb2.DESCRIPTOR.services_by_name["StatisticsService"]
ADMIN_SERVICE = projection_admin_service_pb2.DESCRIPTOR.services_by_name["ProjectionAdminService"]


def add_read_model_services(
    server: grpc.aio.Server, registry: Registry, projections: Projections
) -> list[str]:
    """Register every read-model service; return their full names (for health and reflection)."""
    added = [
        (StatisticsServicer(projections, registry.backend), STATISTICS_SERVICE),
        (ProjectionAdminServicer(projections, registry.backend), ADMIN_SERVICE),
    ]
    for servicer, descriptor in added:
        add_service(server, servicer, descriptor)
    return [descriptor.full_name for _, descriptor in added]
