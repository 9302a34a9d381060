"""IncidentQueryService: the incidents read model, filtered and listed a page at a time."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import incident_pb2
from incident_registry_client.proto.incidents.v1 import incident_query_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import incident_query_service_pb2_grpc as pb_grpc

from projections.incident_queries import (
    IncidentFilter,
    ListedIncident,
    PageKey,
    list_incidents,
    page_key,
)
from projections.incidents import (
    CONFIRMED,
    HIGH,
    LOW,
    MEDIUM,
    NAME,
    SUSPECTED,
    UNATTRIBUTED,
    GangAttribution,
)
from projections.runtime import Projections
from service.api.catch_up import wait_until_caught_up
from service.api.enums import ATTRIBUTION_STATUS, WEAPON_KIND
from service.api.fields import FieldReader
from service.api.page_tokens import encode_page_token, read_page_request
from service.api.timestamps import stamp
from service.areas import AreaCatalog
from service.domain.values import AttributionStatus, WeaponKind
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_QUERY = 200
MAX_VALUES = 100
"""The most values one repeated filter takes."""

INCIDENT_STATUSES = {
    pb.INCIDENT_ATTRIBUTION_STATUS_UNATTRIBUTED: UNATTRIBUTED,
    pb.INCIDENT_ATTRIBUTION_STATUS_SUSPECTED: SUSPECTED,
    pb.INCIDENT_ATTRIBUTION_STATUS_CONFIRMED: CONFIRMED,
}
STATUS_NUMBERS = {name: number for number, name in INCIDENT_STATUSES.items()}
BAND_NUMBERS = {
    LOW: pb.CONFIDENCE_BAND_LOW,
    MEDIUM: pb.CONFIDENCE_BAND_MEDIUM,
    HIGH: pb.CONFIDENCE_BAND_HIGH,
}


class IncidentQueryServicer(pb_grpc.IncidentQueryServiceServicer):
    """Serves IncidentQueryService from the incidents projection."""

    def __init__(
        self, projections: Projections, backend: EventStoreBackend, catalog: AreaCatalog
    ) -> None:
        self._projections = projections
        self._backend = backend
        self._catalog = catalog

    async def ListIncidents(  # noqa: N802 - gRPC method name
        self, request: pb.ListIncidentsRequest, context: Context
    ) -> pb.ListIncidentsResponse:
        """Return a page of matching incidents, newest first, once the model has min_position."""
        reader = FieldReader()
        selection = read_filter(request, reader, self._catalog)
        token, page_size = read_page_request(
            request.page_size,
            request.page_token,
            selection.fingerprint(),
            reader,
            max_size=MAX_PAGE_SIZE,
            default_size=DEFAULT_PAGE_SIZE,
            other_selection="was issued for other filters; list again without a page_token",
        )
        after = None if token is None else PageKey(occurred_at=token[0], incident_id=token[1])
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, listed = await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                list_incidents(tx, selection, after=after, limit=page_size + 1),
            )
        )
        page = listed[:page_size]
        more = len(listed) > page_size
        return pb.ListIncidentsResponse(
            incidents=[summary(incident) for incident in page],
            next_page_token=_next_token(page_key(page[-1]), selection) if more else "",
            position=position,
        )


def read_filter(
    request: pb.ListIncidentsRequest, reader: FieldReader, catalog: AreaCatalog
) -> IncidentFilter:
    """The request's filters, every invalid one recorded in `reader`."""
    for field in (
        "municipality_codes",
        "police_zone_codes",
        "gang_ids",
        "weapon_kinds",
        "attribution_statuses",
    ):
        count = len(getattr(request, field))
        reader.check(count <= MAX_VALUES, field, f"takes at most {MAX_VALUES} values")
    reader.municipalities(request.municipality_codes, "municipality_codes", catalog)
    for index, code in enumerate(request.police_zone_codes):
        reader.check(
            code in catalog.police_zones,
            f"police_zone_codes[{index}]",
            f"unknown police zone {code!r} in area catalog {catalog.catalog_id!r}",
        )
    occurred_from = reader.time(request, "occurred_from", required=False)
    occurred_to = reader.time(request, "occurred_to", required=False)
    if occurred_from is not None and occurred_to is not None:
        reader.check(occurred_from < occurred_to, "occurred_to", "must be after occurred_from")
    weapon_kinds: list[WeaponKind] = [
        reader.enum(number, WEAPON_KIND, f"weapon_kinds[{index}]")
        for index, number in enumerate(request.weapon_kinds)
    ]
    statuses = []
    for index, number in enumerate(request.attribution_statuses):
        status = INCIDENT_STATUSES.get(number)
        reader.check(
            status is not None,
            f"attribution_statuses[{index}]",
            "must be a known IncidentAttributionStatus other than UNSPECIFIED",
        )
        statuses.append(status or UNATTRIBUTED)
    reader.count(request.min_killed, "min_killed")
    reader.count(request.min_injured, "min_injured")
    reader.text(request.query, "query", MAX_QUERY)
    return IncidentFilter(
        municipality_codes=tuple(request.municipality_codes),
        police_zone_codes=tuple(request.police_zone_codes),
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        gang_ids=reader.uuids(request.gang_ids, "gang_ids"),
        weapon_kinds=tuple(kind.value for kind in weapon_kinds),
        min_killed=request.min_killed,
        min_injured=request.min_injured,
        attribution_statuses=tuple(statuses),
        words=tuple(request.query.casefold().split()),
    )


def _attribution(value: GangAttribution) -> pb.AttributionSummary:
    return pb.AttributionSummary(
        gang_id=str(value.gang_id),
        confidence=value.confidence,
        status=ATTRIBUTION_STATUS.proto(AttributionStatus(value.status)),
        confidence_band=BAND_NUMBERS[value.band],
        attributed_at=stamp(value.attributed_at),
    )


def summary(incident: ListedIncident) -> pb.IncidentSummary:
    """A listed incident to its message."""
    state, local = incident.state, incident.local
    return pb.IncidentSummary(
        incident_id=str(state.incident_id),
        version=state.version,
        position=state.position,
        occurred_at=stamp(state.occurred_at),
        reported_at=stamp(state.reported_at),
        municipality_code=state.municipality_code,
        police_zone_code=state.police_zone_code,
        local_day=local.day,
        local_week=local.week,
        local_month=local.month,
        local_year=local.year,
        local_hour=local.hour,
        local_weekday=local.weekday,
        killed=state.killed,
        injured=state.injured,
        weapons=[
            incident_pb2.Weapon(kind=WEAPON_KIND.proto(WeaponKind(kind)), count=count)
            for kind, count in state.weapons
        ],
        address=state.address,
        description=state.description,
        drug_nexus=state.drug_nexus,
        attribution_status=STATUS_NUMBERS[state.attribution_status],
        attributions=[_attribution(a) for a in state.attributions],
        link_count=state.link_count,
    )


def _next_token(key: PageKey, selection: IncidentFilter) -> str:
    return encode_page_token((key.occurred_at, key.incident_id), selection.fingerprint())
