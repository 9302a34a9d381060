"""The services that serve read models (projections), registered on a server in one place."""

from __future__ import annotations

import grpc
from incident_registry_client.proto.incidents.v1 import (
    incident_query_service_pb2,
    projection_admin_service_pb2,
    statistics_service_pb2,
    wave_service_pb2,
)

from projections.runtime import Projections
from service.api.handlers import CallPolicy, add_service
from service.api.servicers.asset_statistics import asset_statistics_service
from service.api.servicers.audit import audit_service
from service.api.servicers.command_queries import command_query_service
from service.api.servicers.incident_queries import IncidentQueryServicer
from service.api.servicers.projection_admin import ProjectionAdminServicer
from service.api.servicers.statistics import StatisticsServicer
from service.api.servicers.waves import WaveServicer
from service.app.registry import Registry

INCIDENT_QUERY_SERVICE = incident_query_service_pb2.DESCRIPTOR.services_by_name[
    "IncidentQueryService"
]
STATISTICS_SERVICE = statistics_service_pb2.DESCRIPTOR.services_by_name["StatisticsService"]
WAVE_SERVICE = wave_service_pb2.DESCRIPTOR.services_by_name["WaveService"]
ADMIN_SERVICE = projection_admin_service_pb2.DESCRIPTOR.services_by_name["ProjectionAdminService"]


def add_read_model_services(
    server: grpc.aio.Server,
    registry: Registry,
    projections: Projections,
    policy: CallPolicy,
) -> list[str]:
    """Register every read-model service under `policy` (see `add_service`); return their
    full names (for health and reflection)."""
    added = [
        (StatisticsServicer(projections, registry.backend), STATISTICS_SERVICE),
        (
            IncidentQueryServicer(projections, registry.backend, registry.catalog),
            INCIDENT_QUERY_SERVICE,
        ),
        (WaveServicer(projections, registry.backend, registry.catalog), WAVE_SERVICE),
        (ProjectionAdminServicer(projections, registry.backend), ADMIN_SERVICE),
        command_query_service(projections, registry),
        asset_statistics_service(projections, registry),
        audit_service(projections, registry),
    ]
    for servicer, descriptor in added:
        add_service(server, servicer, descriptor, policy)
    return [descriptor.full_name for _, descriptor in added]
