"""The server factory: a real gRPC server with health, reflection and the registry's services."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from incident_registry_client.proto.incidents.v1 import (
    asset_service_pb2,
    command_service_pb2,
    event_log_service_pb2,
    gang_service_pb2,
    incident_service_pb2,
)

from projections.runtime import Projections
from service.api.handlers import CallPolicy, add_service
from service.api.read_services import add_read_model_services
from service.api.readiness import StoreReadiness
from service.api.servicers.asset_cases import AssetRecoveryServicer
from service.api.servicers.event_log import EventLogServicer
from service.api.servicers.gangs import GangServicer
from service.api.servicers.incidents import IncidentServicer
from service.api.servicers.police_commands import PoliceCommandServicer
from service.app.registry import Registry
from service.metrics import ServerMetrics
from service.security.auth import ServerSecurity
from service.security.limits import DEFAULT_MAX_MESSAGE_BYTES, CallLimiter, LimitSettings
from service.security.roles import UnmappedRpcError, unmapped
from service.tracing import Tracing

MAX_MESSAGE_BYTES = DEFAULT_MAX_MESSAGE_BYTES
"""The largest response sent (responses are cut well inside it), and the largest request
accepted unless INCIDENTS_MAX_MESSAGE_BYTES (`LimitSettings.max_message_bytes`) says otherwise."""

INCIDENT_SERVICE = incident_service_pb2.DESCRIPTOR.services_by_name["IncidentService"]
GANG_SERVICE = gang_service_pb2.DESCRIPTOR.services_by_name["GangService"]
COMMAND_SERVICE = command_service_pb2.DESCRIPTOR.services_by_name["PoliceCommandService"]
ASSET_SERVICE = asset_service_pb2.DESCRIPTOR.services_by_name["AssetRecoveryService"]
EVENT_LOG_SERVICE = event_log_service_pb2.DESCRIPTOR.services_by_name["EventLogService"]
SERVICE_NAMES: tuple[str, ...] = tuple(
    service.full_name
    for service in (
        INCIDENT_SERVICE,
        GANG_SERVICE,
        COMMAND_SERVICE,
        ASSET_SERVICE,
        EVENT_LOG_SERVICE,
    )
)


LIVENESS = "liveness"
"""Health service name that is SERVING while the process runs (restart it when it is not)."""
READINESS = "readiness"
"""Health service name that is SERVING while the server can take calls (route traffic to it)."""


@dataclass
class RunningServer:
    """A started server, the port it listens on, and its health service."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    registry: Registry
    projections: Projections | None = None
    metrics: ServerMetrics | None = None
    readiness: StoreReadiness | None = None
    tracing: Tracing | None = None

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, let in-flight calls finish within `grace` seconds, then stop.

        Subscriptions and watches never finish by themselves: they are ended at once with
        UNAVAILABLE, so that their clients resume elsewhere instead of holding the shutdown up.
        The spans of the calls, when traced, are exported last (flushed, then the tracer
        provider shuts down).
        """
        if self.readiness is not None:
            await self.readiness.stop()
        await self.health.enter_graceful_shutdown()
        self.registry.event_log.stop_following()
        if self.projections is not None:
            await self.projections.release_waiters()
        await self.server.stop(grace)
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)
        if self.projections is not None:
            await self.projections.stop()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


async def start_server(
    registry: Registry,
    address: str,
    *,
    reuse_port: bool = False,
    stall_seconds: float = 30.0,
    projections: Projections | None = None,
    options: Sequence[tuple[str, int]] = (),
    metrics: ServerMetrics | None = None,
    security: ServerSecurity | None = None,
    limits: LimitSettings | None = None,
    tracing: Tracing | None = None,
) -> RunningServer:
    """Build, bind and start a server for `registry` on `address` ("host:port", port 0 = any).

    `reuse_port` lets several server processes share one port (SO_REUSEPORT); it is off by
    default so that a second server on a taken port fails loudly instead of sharing it.
    `projections`, when given, are started here and their read models served.
    `metrics`, when given, count every call of the registry's services (health and
    reflection calls are not counted), observe the registry and the projections, and are
    served over HTTP until the server stops (OSError when their port cannot be bound).
    `security`, when given, has the server listen with its TLS credentials (plaintext
    without) and check every call of the registry's services with its guard (none without);
    health and reflection stay open. Every registered RPC must be listed in
    `service.security.roles.RPC_ROLES`, with or without a guard: UnmappedRpcError otherwise.
    `limits`, when given, set the largest request accepted, bound unary calls and limit each
    caller (`service.security.limits`); without them, requests up to MAX_MESSAGE_BYTES are
    accepted and nothing else is limited.
    `tracing`, when given, starts a SERVER span for every call of the registry's services
    (`service.tracing`) and is shut down, its spans flushed, when the server stops; health
    and reflection calls are not traced.
    """
    security = security or ServerSecurity()
    server = grpc.aio.server(
        options=[
            (
                "grpc.max_receive_message_length",
                MAX_MESSAGE_BYTES if limits is None else limits.max_message_bytes,
            ),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", int(reuse_port)),
            *options,
        ],
    )
    services = _add_registry_services(
        server,
        registry,
        stall_seconds=stall_seconds,
        projections=projections,
        policy=CallPolicy(
            metrics=None if metrics is None else metrics.rpcs,
            guard=security.guard,
            limiter=None if limits is None else CallLimiter.from_settings(limits),
            call_bound=None if limits is None else limits.call_bound,
            tracer=None if tracing is None else tracing.tracer,
        ),
    )
    _check_roles_cover(services)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if security.credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, security.credentials)
    if port == 0:
        msg = f"cannot listen on {address}"
        raise OSError(msg)
    if metrics is not None:
        metrics.observe(registry, projections)
    try:
        if metrics is not None:
            metrics.start()
        await server.start()
    except BaseException:
        if metrics is not None:
            await asyncio.to_thread(metrics.stop)
        raise
    # The store was opened before the server: from now on the registry can serve.
    if projections is not None:
        projections.start()
    for name in ("", LIVENESS, READINESS, *services):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # Readiness (not liveness) follows the event store from now on.
    readiness = StoreReadiness(health_servicer, registry.event_log.position, ("", READINESS))
    readiness.start()
    return RunningServer(
        server=server,
        port=port,
        health=health_servicer,
        registry=registry,
        projections=projections,
        metrics=metrics,
        readiness=readiness,
        tracing=tracing,
    )


def _add_registry_services(
    server: grpc.aio.Server,
    registry: Registry,
    *,
    stall_seconds: float,
    projections: Projections | None,
    policy: CallPolicy,
) -> tuple[str, ...]:
    """Register the registry's services (the read models' with `projections`) under
    `policy`; return their names."""
    added = [
        (IncidentServicer(registry.incidents, registry.shooting_batches), INCIDENT_SERVICE),
        (GangServicer(registry.gangs), GANG_SERVICE),
        (PoliceCommandServicer(registry.police_commands), COMMAND_SERVICE),
        (AssetRecoveryServicer(registry.asset_cases, registry.catalog.currency), ASSET_SERVICE),
        (
            EventLogServicer(
                registry.event_log,
                stall_seconds=stall_seconds,
                exports=registry.exports,
                imports=registry.imports,
            ),
            EVENT_LOG_SERVICE,
        ),
    ]
    for servicer, descriptor in added:
        add_service(server, servicer, descriptor, policy)
    services = SERVICE_NAMES
    if projections is not None:
        read_services = add_read_model_services(server, registry, projections, policy)
        services = (*SERVICE_NAMES, *read_services)
    return services


def _check_roles_cover(services: tuple[str, ...]) -> None:
    """UnmappedRpcError unless every RPC of `services` is in the roles table."""
    pool = descriptor_pool.Default()
    methods = [
        f"/{name}/{method.name}"
        for name in services
        for method in pool.FindServiceByName(name).methods
    ]
    missing = unmapped(methods)
    if missing:
        msg = f"RPCs without roles in service.security.roles.RPC_ROLES: {', '.join(missing)}"
        raise UnmappedRpcError(msg)
