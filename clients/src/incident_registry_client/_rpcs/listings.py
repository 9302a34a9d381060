"""IncidentQueryService, WaveService and CommandQueryService: listings a page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from incident_registry_client._call import Call, Pages, method_path, pages, read_call
from incident_registry_client._convert.enums import (
    AREA_KIND,
    INCIDENT_ATTRIBUTION_STATUS,
    WEAPON_KIND,
)
from incident_registry_client._convert.read_models import incident_summary, violence_wave
from incident_registry_client._convert.resources import municipality_commands, unified_command
from incident_registry_client._convert.values import id_text, optional_timestamp
from incident_registry_client.proto.incidents.v1 import command_query_service_pb2 as commands_pb
from incident_registry_client.proto.incidents.v1 import incident_query_service_pb2 as incidents_pb
from incident_registry_client.proto.incidents.v1 import wave_service_pb2 as waves_pb
from incident_registry_client.types.areas import AreaKind
from incident_registry_client.types.commands import MunicipalityCommands, UnifiedCommand
from incident_registry_client.types.common import Page
from incident_registry_client.types.incidents import WeaponKind
from incident_registry_client.types.queries import (
    IncidentAttributionStatus,
    IncidentSummary,
    ViolenceWave,
)

T = TypeVar("T")


def list_incidents(
    *,
    municipality_codes: Sequence[str] = (),
    police_zone_codes: Sequence[str] = (),
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    gang_ids: Sequence[UUID] = (),
    weapon_kinds: Sequence[WeaponKind] = (),
    min_killed: int = 0,
    min_injured: int = 0,
    attribution_statuses: Sequence[IncidentAttributionStatus] = (),
    query: str = "",
    page_size: int = 0,
    page_token: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[Page[IncidentSummary]]:
    """Return a page of the incidents matching every filter given, newest first.

    `occurred_from` is inclusive and `occurred_to` exclusive; `query`'s words must all occur
    in the description or address. `page_size` 0 is 50 (at most 500); pass the page's
    `next_page_token` as `page_token`, with the same filters, for the next page.
    """
    request = incidents_pb.ListIncidentsRequest(
        municipality_codes=list(municipality_codes),
        police_zone_codes=list(police_zone_codes),
        occurred_from=optional_timestamp(occurred_from),
        occurred_to=optional_timestamp(occurred_to),
        gang_ids=[id_text(g) for g in gang_ids],
        weapon_kinds=[WEAPON_KIND.to_proto(k) for k in weapon_kinds],
        min_killed=min_killed,
        min_injured=min_injured,
        attribution_statuses=[
            INCIDENT_ATTRIBUTION_STATUS.to_proto(s) for s in attribution_statuses
        ],
        query=query,
        page_size=page_size,
        page_token=page_token,
        min_position=min_position,
    )
    return read_call(
        method_path(incidents_pb, "IncidentQueryService", "ListIncidents"),
        request,
        incidents_pb.ListIncidentsResponse,
        lambda r: Page(
            tuple(incident_summary(i) for i in r.incidents), r.next_page_token, r.position
        ),
        timeout,
    )


def iter_incidents(
    *,
    municipality_codes: Sequence[str] = (),
    police_zone_codes: Sequence[str] = (),
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    gang_ids: Sequence[UUID] = (),
    weapon_kinds: Sequence[WeaponKind] = (),
    min_killed: int = 0,
    min_injured: int = 0,
    attribution_statuses: Sequence[IncidentAttributionStatus] = (),
    query: str = "",
    page_size: int = 0,
    min_position: int = 0,
    timeout: float | None = None,
) -> Pages[IncidentSummary]:
    """Iterate over every incident matching the filters (as list_incidents), page by page.

    Each page is one ListIncidents call, retried on its own; a retry asks for the same page.
    """

    def page(token: str) -> Call[Page[IncidentSummary]]:
        return list_incidents(
            municipality_codes=municipality_codes,
            police_zone_codes=police_zone_codes,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
            gang_ids=gang_ids,
            weapon_kinds=weapon_kinds,
            min_killed=min_killed,
            min_injured=min_injured,
            attribution_statuses=attribution_statuses,
            query=query,
            page_size=page_size,
            page_token=token,
            min_position=min_position,
            timeout=timeout,
        )

    return pages(page(""), lambda p: page(p.next_page_token) if p.next_page_token else None, _items)


def list_waves(
    *,
    area_kind: AreaKind | None = None,
    area_codes: Sequence[str] = (),
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[Page[ViolenceWave]]:
    """Return a page of violence waves by area and time, ordered by their first shooting.

    `area_kind` is needed with `area_codes` (a police zone also selects its municipalities'
    waves); waves whose span meets `from_time`..`to_time` are selected.
    """
    request = waves_pb.ListWavesRequest(
        area_kind=AREA_KIND.optional_to_proto(area_kind),
        area_codes=list(area_codes),
        from_time=optional_timestamp(from_time),
        to_time=optional_timestamp(to_time),
        page_size=page_size,
        page_token=page_token,
        min_position=min_position,
    )
    return read_call(
        method_path(waves_pb, "WaveService", "ListWaves"),
        request,
        waves_pb.ListWavesResponse,
        lambda r: Page(tuple(violence_wave(w) for w in r.waves), r.next_page_token, r.position),
        timeout,
    )


def iter_waves(
    *,
    area_kind: AreaKind | None = None,
    area_codes: Sequence[str] = (),
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    page_size: int = 0,
    min_position: int = 0,
    timeout: float | None = None,
) -> Pages[ViolenceWave]:
    """Iterate over every wave matching the selection (as list_waves), page by page."""

    def page(token: str) -> Call[Page[ViolenceWave]]:
        return list_waves(
            area_kind=area_kind,
            area_codes=area_codes,
            from_time=from_time,
            to_time=to_time,
            page_size=page_size,
            page_token=token,
            min_position=min_position,
            timeout=timeout,
        )

    return pages(page(""), lambda p: page(p.next_page_token) if p.next_page_token else None, _items)


def list_unified_commands(
    *,
    municipality_codes: Sequence[str] = (),
    active_only: bool = False,
    active_from: datetime | None = None,
    active_to: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[Page[UnifiedCommand]]:
    """Return a page of unified commands, newest first, over any of `municipality_codes`.

    `active_from`/`active_to` keep commands whose active period overlaps the range.
    """
    request = commands_pb.ListUnifiedCommandsRequest(
        municipality_codes=list(municipality_codes),
        active_only=active_only,
        active_from=optional_timestamp(active_from),
        active_to=optional_timestamp(active_to),
        page_size=page_size,
        page_token=page_token,
        min_position=min_position,
    )
    return read_call(
        method_path(commands_pb, "CommandQueryService", "ListUnifiedCommands"),
        request,
        commands_pb.ListUnifiedCommandsResponse,
        lambda r: Page(
            tuple(unified_command(c) for c in r.commands), r.next_page_token, r.position
        ),
        timeout,
    )


def iter_unified_commands(
    *,
    municipality_codes: Sequence[str] = (),
    active_only: bool = False,
    active_from: datetime | None = None,
    active_to: datetime | None = None,
    page_size: int = 0,
    min_position: int = 0,
    timeout: float | None = None,
) -> Pages[UnifiedCommand]:
    """Iterate over every unified command matching the filters (as list_unified_commands)."""

    def page(token: str) -> Call[Page[UnifiedCommand]]:
        return list_unified_commands(
            municipality_codes=municipality_codes,
            active_only=active_only,
            active_from=active_from,
            active_to=active_to,
            page_size=page_size,
            page_token=token,
            min_position=min_position,
            timeout=timeout,
        )

    return pages(page(""), lambda p: page(p.next_page_token) if p.next_page_token else None, _items)


def get_municipality_commands(
    *,
    municipality_codes: Sequence[str] = (),
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[MunicipalityCommands]:
    """Return each municipality (all of the catalog when none given) and its active command."""
    request = commands_pb.GetMunicipalityCommandsRequest(
        municipality_codes=list(municipality_codes), min_position=min_position
    )
    return read_call(
        method_path(commands_pb, "CommandQueryService", "GetMunicipalityCommands"),
        request,
        commands_pb.GetMunicipalityCommandsResponse,
        municipality_commands,
        timeout,
    )


def _items(page: Page[T]) -> tuple[T, ...]:
    return page.items
