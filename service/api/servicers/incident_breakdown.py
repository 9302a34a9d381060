"""StatisticsService.GetIncidentBreakdown: counts of a selection of the incidents read model."""

from __future__ import annotations

import re
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as stats_pb

from projections.incident_queries import Selection, incident_breakdown
from projections.incidents import NAME
from projections.runtime import Projections
from service.api.catch_up import wait_until_caught_up
from service.api.enums import WEAPON_KIND
from service.api.fields import FieldReader
from service.api.servicers.incident_queries import BAND_NUMBERS, MAX_VALUES, STATUS_NUMBERS
from service.domain.values import WeaponKind
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

AREA_KINDS = {
    stats_pb.AREA_KIND_MUNICIPALITY: "municipality",
    stats_pb.AREA_KIND_POLICE_ZONE: "police_zone",
}
PERIOD_KINDS = {
    stats_pb.PERIOD_KIND_DAY: "day",
    stats_pb.PERIOD_KIND_ISO_WEEK: "week",
    stats_pb.PERIOD_KIND_MONTH: "month",
    stats_pb.PERIOD_KIND_YEAR: "year",
}
PERIOD_FORMS = {
    "day": (re.compile(r"\d{4}-\d{2}-\d{2}"), "2024-06-01"),
    "week": (re.compile(r"\d{4}-W\d{2}"), "2024-W22"),
    "month": (re.compile(r"\d{4}-\d{2}"), "2024-06"),
    "year": (re.compile(r"\d{4}"), "2024"),
}


def read_selection(request: stats_pb.GetIncidentBreakdownRequest, reader: FieldReader) -> Selection:
    """The request's selection of incidents, every invalid field recorded in `reader`."""
    area_kind = AREA_KINDS.get(request.area_kind)
    if request.area_codes or request.area_kind:
        reader.check(area_kind is not None, "area_kind", "must be MUNICIPALITY or POLICE_ZONE")
    reader.check(
        len(request.area_codes) <= MAX_VALUES, "area_codes", f"takes at most {MAX_VALUES} values"
    )
    period_kind = PERIOD_KINDS.get(request.period_kind)
    if request.period_kind or request.from_period or request.to_period:
        reader.check(period_kind is not None, "period_kind", "must be DAY, ISO_WEEK, MONTH or YEAR")
    if period_kind is not None:
        form, example = PERIOD_FORMS[period_kind]
        for field in ("from_period", "to_period"):
            value = getattr(request, field)
            reader.check(
                not value or form.fullmatch(value) is not None,
                field,
                f"must be a {period_kind} like {example!r}",
            )
        if request.from_period and request.to_period:
            reader.check(
                request.from_period <= request.to_period,
                "to_period",
                "must not be before from_period",
            )
    return Selection(
        area_kind=area_kind or "municipality",
        area_codes=tuple(request.area_codes),
        period_kind=period_kind,
        from_period=request.from_period,
        to_period=request.to_period,
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


async def get_incident_breakdown(
    projections: Projections,
    backend: EventStoreBackend,
    request: stats_pb.GetIncidentBreakdownRequest,
    context: Context,
) -> stats_pb.GetIncidentBreakdownResponse:
    """A breakdown of the selected incidents, once the model includes `min_position`."""
    reader = FieldReader()
    selection = read_selection(request, reader)
    reader.count(request.min_position, "min_position")
    reader.raise_if_any()
    await wait_until_caught_up(projections, [NAME], request.min_position, backend, context)
    position, found = await projections.read(
        lambda tx: (tx.position(NAME), incident_breakdown(tx, selection))
    )
    total = found.incidents
    return stats_pb.GetIncidentBreakdownResponse(
        totals=stats_pb.BreakdownTotals(
            incidents=total, killed=found.killed, injured=found.injured
        ),
        hour_weekday=[
            stats_pb.HourWeekdayCell(
                weekday=day, hour=hour, incidents=found.hour_weekday.get((day, hour), 0)
            )
            for day in range(1, 8)
            for hour in range(24)
        ],
        weapon_kinds=[
            stats_pb.WeaponKindBreakdown(
                kind=WEAPON_KIND.proto(kind),
                incidents=found.weapons.get(kind.value, (0, 0))[0],
                weapons=found.weapons.get(kind.value, (0, 0))[1],
            )
            for kind in WeaponKind
        ],
        attribution_statuses=[
            stats_pb.AttributionStatusShare(
                status=STATUS_NUMBERS[status], incidents=count, share=_share(count, total)
            )
            for status, count in found.statuses.items()
        ],
        confidence_bands=[
            stats_pb.ConfidenceBandShare(
                band=BAND_NUMBERS[band], incidents=count, share=_share(count, total)
            )
            for band, count in found.bands.items()
        ],
        gangs=[
            stats_pb.GangBreakdown(
                gang_id=gang.gang_id,
                incidents=gang.incidents,
                killed=gang.killed,
                injured=gang.injured,
                suspected_incidents=gang.suspected,
                confirmed_incidents=gang.confirmed,
            )
            for gang in found.gangs
        ],
        position=position,
    )
