"""Protobuf write requests to domain commands and write contexts."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from incident_registry_client.proto.incidents.v1 import (
    asset_pb2,
    asset_service_pb2,
    command_service_pb2,
    gang_service_pb2,
    incident_pb2,
    incident_service_pb2,
)

from service.api.enums import (
    ASSET_KIND,
    ATTRIBUTION_STATUS,
    BENEFICIARY_KIND,
    LINK_KIND,
    SOURCE_KIND,
    TIME_PRECISION,
    WEAPON_KIND,
)
from service.api.fields import FieldReader
from service.app import commands as c
from service.app.results import WriteContext
from service.domain.values import AssetItem, Beneficiary, Source, Weapon

ACTOR_HEADER = "x-actor"
"""Who a write is recorded for. With authentication on, `service.api.handlers` sets it to the
authenticated identity, replacing whatever the client sent; with it off (local development),
it is the client's own, unauthenticated claim."""
CORRELATION_HEADER = "x-correlation-id"
CAUSATION_HEADER = "x-causation-id"
MAX_HEADER_CHARS = 200
"""The most characters of a metadata header kept in an event's metadata."""

_call_trace_id: ContextVar[str] = ContextVar("call_trace_id", default="")


def set_call_trace_id(trace_id: str) -> None:
    """Record the trace id of the current call's server span, for its events' metadata.

    Set by `service.api.handlers` only when tracing is on; each call runs in its own task,
    hence its own context, so it never leaks into another call.
    """
    _call_trace_id.set(trace_id)


def correlation_header(headers: Mapping[str, str]) -> str:
    """The x-correlation-id header as an event's metadata keeps it ("" when absent)."""
    return headers.get(CORRELATION_HEADER, "")[:MAX_HEADER_CHARS]


def write_context(request: Any, headers: Mapping[str, str], reader: FieldReader) -> WriteContext:
    """Read the request id, expected version and metadata headers of a write, and the
    call's trace id when tracing is on."""
    return WriteContext(
        request_id=reader.request_id(request.request_id),
        expected_version=reader.expected_version(request),
        actor=headers.get(ACTOR_HEADER, "")[:MAX_HEADER_CHARS],
        correlation_id=correlation_header(headers),
        causation_id=headers.get(CAUSATION_HEADER, "")[:MAX_HEADER_CHARS],
        trace_id=_call_trace_id.get(),
    )


def _weapons(r: FieldReader, weapons: Any, field: str) -> tuple[Weapon, ...]:
    return tuple(
        Weapon(kind=r.enum(w.kind, WEAPON_KIND, f"{field}[{i}].kind"), count=w.count)
        for i, w in enumerate(weapons)
    )


def _sources(r: FieldReader, sources: Any) -> tuple[Source, ...]:
    return tuple(
        Source(
            kind=r.enum(s.kind, SOURCE_KIND, f"sources[{i}].kind"),
            name=s.name,
            reference=s.reference,
            retrieved_at=r.time(
                s, "retrieved_at", required=False, path=f"sources[{i}].retrieved_at"
            ),
        )
        for i, s in enumerate(sources)
    )


def report_shooting(
    request: incident_service_pb2.ReportShootingRequest, r: FieldReader
) -> c.ReportShooting:
    """ReportShootingRequest to ReportShooting."""
    return c.ReportShooting(
        occurred_at=r.required_time(request, "occurred_at"),
        occurred_at_precision=r.enum(
            request.occurred_at_precision, TIME_PRECISION, "occurred_at_precision"
        ),
        municipality_code=request.municipality_code,
        reported_at=r.time(request, "reported_at", required=False),
        address=request.address,
        location=r.geo_point(request, "location"),
        weapons=_weapons(r, request.weapons, "weapons"),
        assailant_count=request.assailant_count,
        assailants_masked=request.assailants_masked,
        killed=request.killed,
        injured=request.injured,
        drug_nexus=request.drug_nexus,
        description=request.description,
        sources=_sources(r, request.sources),
        external_reference=request.external_reference,
    )


def revise_casualties(
    request: incident_service_pb2.ReviseCasualtiesRequest, r: FieldReader
) -> c.ReviseCasualties:
    """ReviseCasualtiesRequest to ReviseCasualties."""
    return c.ReviseCasualties(
        incident_id=r.uuid(request.incident_id, "incident_id"),
        killed=request.killed,
        injured=request.injured,
        reason=request.reason,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


_CORRECTION_FIELDS = (
    "occurred_at",
    "occurred_at_precision",
    "municipality_code",
    "address",
    "location",
    "weapons",
    "assailant_count",
    "assailants_masked",
    "drug_nexus",
    "description",
)


def amend_incident(
    request: incident_service_pb2.AmendIncidentRequest, r: FieldReader
) -> c.AmendIncident:
    """AmendIncidentRequest to AmendIncident: the update mask selects the corrections."""
    correction: incident_pb2.IncidentCorrection = request.correction
    paths = list(request.update_mask.paths)
    r.check(bool(paths), "update_mask", "must name at least one field to correct")
    r.distinct(paths, "update_mask.paths")
    corrections: dict[str, object] = {}
    for index, path in enumerate(paths):
        if not r.check(
            path in _CORRECTION_FIELDS,
            f"update_mask.paths[{index}]",
            f"{path!r} cannot be amended; one of {', '.join(_CORRECTION_FIELDS)}",
        ):
            continue
        value: object
        if path == "occurred_at":
            value = r.time(correction, "occurred_at", required=True, path="correction.occurred_at")
        elif path == "occurred_at_precision":
            value = r.enum(
                correction.occurred_at_precision,
                TIME_PRECISION,
                "correction.occurred_at_precision",
            )
        elif path == "location":
            value = r.geo_point(correction, "location")
        elif path == "weapons":
            value = _weapons(r, correction.weapons, "correction.weapons")
        else:
            value = getattr(correction, path)
        corrections[path] = value
    return c.AmendIncident(
        incident_id=r.uuid(request.incident_id, "incident_id"),
        corrections=corrections,
        reason=request.reason,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def attribute_to_gang(
    request: incident_service_pb2.AttributeToGangRequest, r: FieldReader
) -> c.AttributeToGang:
    """AttributeToGangRequest to AttributeToGang."""
    return c.AttributeToGang(
        incident_id=r.uuid(request.incident_id, "incident_id"),
        gang_id=r.uuid(request.gang_id, "gang_id"),
        confidence=request.confidence,
        status=r.enum(request.status, ATTRIBUTION_STATUS, "status"),
        basis=request.basis,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def retract_attribution(
    request: incident_service_pb2.RetractAttributionRequest, r: FieldReader
) -> c.RetractAttribution:
    """RetractAttributionRequest to RetractAttribution."""
    return c.RetractAttribution(
        incident_id=r.uuid(request.incident_id, "incident_id"),
        gang_id=r.uuid(request.gang_id, "gang_id"),
        reason=request.reason,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def erase_personal_data(
    request: incident_service_pb2.ErasePersonalDataRequest, r: FieldReader
) -> c.ErasePersonalData:
    """ErasePersonalDataRequest to ErasePersonalData."""
    return c.ErasePersonalData(
        incident_id=r.uuid(request.incident_id, "incident_id"),
        reason=request.reason,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def link_incidents(
    request: incident_service_pb2.LinkIncidentsRequest, r: FieldReader
) -> c.LinkIncidents:
    """LinkIncidentsRequest to LinkIncidents."""
    return c.LinkIncidents(
        incident_id=r.uuid(request.incident_id, "incident_id"),
        related_incident_id=r.uuid(request.related_incident_id, "related_incident_id"),
        kind=r.enum(request.kind, LINK_KIND, "kind"),
        note=request.note,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def register_gang(request: gang_service_pb2.RegisterGangRequest, r: FieldReader) -> c.RegisterGang:
    """RegisterGangRequest to RegisterGang."""
    return c.RegisterGang(
        name=request.name,
        aliases=tuple(request.aliases),
        territory_municipality_codes=tuple(request.territory_municipality_codes),
        territory_description=request.territory_description,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def add_gang_alias(request: gang_service_pb2.AddGangAliasRequest, r: FieldReader) -> c.AddGangAlias:
    """AddGangAliasRequest to AddGangAlias."""
    return c.AddGangAlias(
        gang_id=r.uuid(request.gang_id, "gang_id"),
        alias=request.alias,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def unify_police_command(
    request: command_service_pb2.UnifyPoliceCommandRequest, r: FieldReader
) -> c.UnifyPoliceCommand:
    """UnifyPoliceCommandRequest to UnifyPoliceCommand."""
    return c.UnifyPoliceCommand(
        lead_authority=request.lead_authority,
        reason=request.reason,
        municipality_codes=tuple(request.municipality_codes),
        police_zone_codes=tuple(request.police_zone_codes),
        starts_at=r.time(request, "starts_at", required=False),
        planned_end_at=r.time(request, "planned_end_at", required=False),
        triggering_incident_ids=r.uuids(request.triggering_incident_ids, "triggering_incident_ids"),
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def end_unified_command(
    request: command_service_pb2.EndUnifiedCommandRequest, r: FieldReader
) -> c.EndUnifiedCommand:
    """EndUnifiedCommandRequest to EndUnifiedCommand."""
    return c.EndUnifiedCommand(
        command_id=r.uuid(request.command_id, "command_id"),
        reason=request.reason,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def _item(r: FieldReader, item: asset_pb2.AssetItem, field: str) -> AssetItem:
    return AssetItem(
        kind=r.enum(item.kind, ASSET_KIND, f"{field}.kind"),
        description=item.description,
        estimated_value_cents=item.estimated_value_cents,
        quantity=item.quantity or 1,
        weight_kg=item.weight_kg,
    )


def record_asset_seizure(
    request: asset_service_pb2.RecordAssetSeizureRequest, r: FieldReader
) -> c.RecordAssetSeizure:
    """RecordAssetSeizureRequest to RecordAssetSeizure."""
    return c.RecordAssetSeizure(
        occurred_at=r.required_time(request, "occurred_at"),
        case_reference=request.case_reference,
        municipality_code=request.municipality_code,
        items=tuple(_item(r, item, f"items[{i}]") for i, item in enumerate(request.items)),
        gang_id=r.optional_uuid(request.gang_id, "gang_id"),
        incident_ids=r.uuids(request.incident_ids, "incident_ids"),
        description=request.description,
    )


def confiscate_assets(
    request: asset_service_pb2.ConfiscateAssetsRequest, r: FieldReader
) -> c.ConfiscateAssets:
    """ConfiscateAssetsRequest to ConfiscateAssets."""
    return c.ConfiscateAssets(
        case_id=r.uuid(request.case_id, "case_id"),
        amount_cents=request.amount_cents,
        court=request.court,
        decision_reference=request.decision_reference,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def reinvest_assets(
    request: asset_service_pb2.ReinvestAssetsRequest, r: FieldReader
) -> c.ReinvestAssets:
    """ReinvestAssetsRequest to ReinvestAssets."""
    beneficiary = request.beneficiary
    return c.ReinvestAssets(
        case_id=r.uuid(request.case_id, "case_id"),
        amount_cents=request.amount_cents,
        beneficiary=Beneficiary(
            kind=r.enum(beneficiary.kind, BENEFICIARY_KIND, "beneficiary.kind"),
            name=beneficiary.name,
        ),
        note=request.note,
        occurred_at=r.time(request, "occurred_at", required=False),
    )


def release_assets(
    request: asset_service_pb2.ReleaseAssetsRequest, r: FieldReader
) -> c.ReleaseAssets:
    """ReleaseAssetsRequest to ReleaseAssets."""
    return c.ReleaseAssets(
        case_id=r.uuid(request.case_id, "case_id"),
        amount_cents=request.amount_cents,
        court=request.court,
        decision_reference=request.decision_reference,
        reason=request.reason,
        occurred_at=r.time(request, "occurred_at", required=False),
    )
