"""PoliceCommandService: temporary unified police commands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from incident_registry_client._call import Call, method_path, new_request_id, read_call, write_call
from incident_registry_client._convert.events import events
from incident_registry_client._convert.incidents import write_result
from incident_registry_client._convert.resources import unified_command
from incident_registry_client._convert.values import id_text, optional_timestamp
from incident_registry_client.proto.incidents.v1 import command_service_pb2 as pb
from incident_registry_client.types.commands import UnifiedCommand
from incident_registry_client.types.common import Aggregate, WriteResult


def _path(method: str) -> str:
    return method_path(pb, "PoliceCommandService", method)


def unify_police_command(
    *,
    lead_authority: str,
    reason: str,
    municipality_codes: Sequence[str] = (),
    police_zone_codes: Sequence[str] = (),
    starts_at: datetime | None = None,
    planned_end_at: datetime | None = None,
    triggering_incident_ids: Sequence[UUID] = (),
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Place municipalities or whole police zones under one temporary command."""
    request = pb.UnifyPoliceCommandRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        municipality_codes=list(municipality_codes),
        police_zone_codes=list(police_zone_codes),
        lead_authority=lead_authority,
        reason=reason,
        starts_at=optional_timestamp(starts_at),
        planned_end_at=optional_timestamp(planned_end_at),
        triggering_incident_ids=[id_text(i) for i in triggering_incident_ids],
    )
    return write_call(
        _path("UnifyPoliceCommand"),
        request,
        pb.UnifyPoliceCommandResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def end_unified_command(
    *,
    command_id: UUID,
    reason: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """End an active unified command, with a reason."""
    request = pb.EndUnifiedCommandRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        command_id=id_text(command_id),
        reason=reason,
    )
    return write_call(
        _path("EndUnifiedCommand"),
        request,
        pb.EndUnifiedCommandResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def get_unified_command(
    *, command_id: UUID, timeout: float | None = None
) -> Call[Aggregate[UnifiedCommand]]:
    """Return a unified command's current state and its full event history."""
    return read_call(
        _path("GetUnifiedCommand"),
        pb.GetUnifiedCommandRequest(command_id=id_text(command_id)),
        pb.GetUnifiedCommandResponse,
        lambda r: Aggregate(unified_command(r.command), events(r.history)),
        timeout,
    )
