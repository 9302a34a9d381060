"""GangService: gangs and their aliases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from incident_registry_client._call import Call, method_path, new_request_id, read_call, write_call
from incident_registry_client._convert.events import events
from incident_registry_client._convert.incidents import write_result
from incident_registry_client._convert.resources import gang
from incident_registry_client._convert.values import id_text, optional_timestamp
from incident_registry_client.proto.incidents.v1 import gang_service_pb2 as pb
from incident_registry_client.types.common import Aggregate, WriteResult
from incident_registry_client.types.gangs import Gang


def _path(method: str) -> str:
    return method_path(pb, "GangService", method)


def register_gang(
    *,
    name: str,
    aliases: Sequence[str] = (),
    territory_municipality_codes: Sequence[str] = (),
    territory_description: str = "",
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Register a new gang; the result's `aggregate_id` is the new gang's id."""
    request = pb.RegisterGangRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        name=name,
        aliases=list(aliases),
        territory_municipality_codes=list(territory_municipality_codes),
        territory_description=territory_description,
    )
    return write_call(
        _path("RegisterGang"),
        request,
        pb.RegisterGangResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def add_gang_alias(
    *,
    gang_id: UUID,
    alias: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record another alias or pseudonym of a gang."""
    request = pb.AddGangAliasRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        gang_id=id_text(gang_id),
        alias=alias,
    )
    return write_call(
        _path("AddGangAlias"),
        request,
        pb.AddGangAliasResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def get_gang(*, gang_id: UUID, timeout: float | None = None) -> Call[Aggregate[Gang]]:
    """Return a gang's current state and its full event history."""
    return read_call(
        _path("GetGang"),
        pb.GetGangRequest(gang_id=id_text(gang_id)),
        pb.GetGangResponse,
        lambda r: Aggregate(gang(r.gang), events(r.history)),
        timeout,
    )
