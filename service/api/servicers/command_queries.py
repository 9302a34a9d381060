"""CommandQueryService: the unified commands read model."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from incident_registry_client.proto.incidents.v1 import command_pb2
from incident_registry_client.proto.incidents.v1 import command_query_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import command_query_service_pb2_grpc as pb_grpc

from projections.commands_model import (
    ACTIVE,
    NAME,
    CommandView,
    Cursor,
    active_commands,
    cursor_after,
    list_commands,
)
from projections.runtime import Projections
from service.api.catch_up import wait_until_caught_up
from service.api.enums import COMMAND_ACTIVE, COMMAND_ENDED
from service.api.fields import FieldReader
from service.api.timestamps import stamp
from service.app.registry import Registry
from service.areas import AreaCatalog
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_CURSOR_PREFIX = "c1:"


def unified_command(view: CommandView) -> command_pb2.UnifiedCommand:
    """A command of the read model as the API's UnifiedCommand resource."""
    return command_pb2.UnifiedCommand(
        command_id=str(view.command_id),
        version=view.version,
        status=COMMAND_ACTIVE if view.status == ACTIVE else COMMAND_ENDED,
        municipality_codes=list(view.municipality_codes),
        police_zone_codes=list(view.police_zone_codes),
        lead_authority=view.lead_authority,
        reason=view.reason,
        starts_at=stamp(view.starts_at),
        planned_end_at=stamp(view.planned_end_at),
        ended_at=stamp(view.ended_at),
        end_reason=view.end_reason,
        triggering_incident_ids=[str(i) for i in view.triggering_incident_ids],
        recorded_at=stamp(view.recorded_at),
        updated_at=stamp(view.updated_at),
    )


def page_token(cursor: Cursor) -> str:
    """An opaque token for the page after `cursor`."""
    raw = f"{_CURSOR_PREFIX}{cursor.starts_at}:{cursor.position}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def read_page_token(token: str, reader: FieldReader) -> Cursor | None:
    """The cursor of a page token (None for the first page); a violation if it is not ours."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        starts_at, position = raw.removeprefix(_CURSOR_PREFIX).split(":")
        return Cursor(starts_at=int(starts_at), position=int(position))
    except (ValueError, binascii.Error, UnicodeError):
        reader.check(False, "page_token", "is not a next_page_token this service returned")
        return None


class CommandQueryServicer(pb_grpc.CommandQueryServiceServicer):
    """Serves CommandQueryService from the unified commands projection."""

    def __init__(
        self, projections: Projections, backend: EventStoreBackend, catalog: AreaCatalog
    ) -> None:
        self._projections = projections
        self._backend = backend
        self._catalog = catalog

    async def ListUnifiedCommands(  # noqa: N802 - gRPC method name
        self, request: pb.ListUnifiedCommandsRequest, context: Context
    ) -> pb.ListUnifiedCommandsResponse:
        """Return a page of commands, newest first, once the model includes `min_position`."""
        reader = FieldReader()
        codes = list(request.municipality_codes)
        reader.municipalities(codes, "municipality_codes", self._catalog)
        active_from = reader.time(request, "active_from", required=False)
        active_to = reader.time(request, "active_to", required=False)
        if active_from is not None and active_to is not None:
            reader.check(active_to > active_from, "active_to", "must be after active_from")
        reader.count(request.page_size, "page_size")
        after = read_page_token(request.page_token, reader)
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        limit = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, views = await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                list_commands(
                    tx,
                    municipality_codes=codes,
                    active_only=request.active_only,
                    active_from=active_from,
                    active_to=active_to,
                    after=after,
                    limit=limit + 1,
                ),
            )
        )
        page = views[:limit]
        more = len(views) > limit
        return pb.ListUnifiedCommandsResponse(
            commands=[unified_command(view) for view in page],
            next_page_token=page_token(cursor_after(page[-1])) if more else "",
            position=position,
        )

    async def GetMunicipalityCommands(  # noqa: N802
        self, request: pb.GetMunicipalityCommandsRequest, context: Context
    ) -> pb.GetMunicipalityCommandsResponse:
        """Return each municipality with its active command, if any."""
        reader = FieldReader()
        reader.municipalities(request.municipality_codes, "municipality_codes", self._catalog)
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        codes = sorted(set(request.municipality_codes) or set(self._catalog.municipalities))
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, active = await self._projections.read(
            lambda tx: (tx.position(NAME), active_commands(tx, codes))
        )
        entries = []
        for code in codes:
            municipality = self._catalog.municipality(code)
            command = active.get(code)
            entries.append(
                pb.MunicipalityCommand(
                    municipality_code=code,
                    municipality_name=municipality.name,
                    police_zone_code=municipality.police_zone,
                    active_command=None if command is None else unified_command(command),
                )
            )
        return pb.GetMunicipalityCommandsResponse(municipalities=entries, position=position)


def command_query_service(
    projections: Projections, registry: Registry
) -> tuple[CommandQueryServicer, ServiceDescriptor]:
    """The servicer and the descriptor of CommandQueryService, for add_read_model_services."""
    servicer = CommandQueryServicer(projections, registry.backend, registry.catalog)
    return servicer, pb.DESCRIPTOR.services_by_name["CommandQueryService"]
