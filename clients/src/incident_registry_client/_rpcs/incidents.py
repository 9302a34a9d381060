"""IncidentService: shootings and what is learned about them later."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from incident_registry_client._call import Call, method_path, new_request_id, read_call, write_call
from incident_registry_client._convert import incidents as conv
from incident_registry_client._convert.enums import ATTRIBUTION_STATUS, LINK_KIND, TIME_PRECISION
from incident_registry_client._convert.events import events
from incident_registry_client._convert.values import id_text, optional_timestamp, timestamp
from incident_registry_client.proto.incidents.v1 import incident_service_pb2 as pb
from incident_registry_client.types.common import Aggregate, GeoPoint, WriteResult
from incident_registry_client.types.incidents import (
    AttributionStatus,
    Incident,
    IncidentCorrection,
    LinkKind,
    ShootingReport,
    Source,
    TimePrecision,
    Weapon,
)


def _path(method: str) -> str:
    return method_path(pb, "IncidentService", method)


def report_shooting(
    *,
    occurred_at: datetime,
    occurred_at_precision: TimePrecision,
    municipality_code: str,
    reported_at: datetime | None = None,
    address: str = "",
    location: GeoPoint | None = None,
    weapons: Sequence[Weapon] = (),
    assailant_count: int = 0,
    assailants_masked: bool = False,
    killed: int = 0,
    injured: int = 0,
    drug_nexus: bool = False,
    description: str = "",
    sources: Sequence[Source] = (),
    external_reference: str = "",
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record a new shooting; the result's `aggregate_id` is the new incident's id."""
    report = ShootingReport(
        occurred_at=occurred_at,
        occurred_at_precision=occurred_at_precision,
        municipality_code=municipality_code,
        reported_at=reported_at,
        address=address,
        location=location,
        weapons=weapons,
        assailant_count=assailant_count,
        assailants_masked=assailants_masked,
        killed=killed,
        injured=injured,
        drug_nexus=drug_nexus,
        description=description,
        sources=sources,
        external_reference=external_reference,
        request_id=request_id,
        expected_version=expected_version,
    )
    return write_call(
        _path("ReportShooting"),
        _shooting_request(report),
        pb.ReportShootingResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def report_shootings(
    *, shootings: Sequence[ShootingReport], timeout: float | None = None
) -> Call[tuple[WriteResult, ...]]:
    """Record up to 1000 shootings at once: all of them, or none when one is invalid.

    Results come in the order of `shootings`; each has its own request id, so retrying the
    batch replays the shootings already recorded.
    """
    request = pb.ReportShootingsRequest(requests=[_shooting_request(s) for s in shootings])
    return write_call(
        _path("ReportShootings"),
        request,
        pb.ReportShootingsResponse,
        lambda r: tuple(conv.write_result(result) for result in r.results),
        timeout,
    )


def _shooting_request(report: ShootingReport) -> pb.ReportShootingRequest:
    return pb.ReportShootingRequest(
        request_id=new_request_id(report.request_id),
        expected_version=report.expected_version,
        occurred_at=timestamp(report.occurred_at),
        occurred_at_precision=TIME_PRECISION.to_proto(report.occurred_at_precision),
        reported_at=optional_timestamp(report.reported_at),
        municipality_code=report.municipality_code,
        address=report.address,
        location=conv.geo_point_message(report.location),
        weapons=conv.weapon_messages(report.weapons),
        assailant_count=report.assailant_count,
        assailants_masked=report.assailants_masked,
        killed=report.killed,
        injured=report.injured,
        drug_nexus=report.drug_nexus,
        description=report.description,
        sources=conv.source_messages(report.sources),
        external_reference=report.external_reference,
    )


def revise_casualties(
    *,
    incident_id: UUID,
    killed: int,
    injured: int,
    reason: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record new casualty totals of an incident, e.g. when a victim dies later."""
    request = pb.ReviseCasualtiesRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        incident_id=id_text(incident_id),
        killed=killed,
        injured=injured,
        reason=reason,
    )
    return write_call(
        _path("ReviseCasualties"),
        request,
        pb.ReviseCasualtiesResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def amend_incident(
    *,
    incident_id: UUID,
    correction: IncidentCorrection,
    reason: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Correct facts of an incident (the fields of `correction` that are set), with a reason."""
    message, mask = conv.correction_message(correction)
    request = pb.AmendIncidentRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        incident_id=id_text(incident_id),
        correction=message,
        update_mask=mask,
        reason=reason,
    )
    return write_call(
        _path("AmendIncident"),
        request,
        pb.AmendIncidentResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def attribute_to_gang(
    *,
    incident_id: UUID,
    gang_id: UUID,
    confidence: float,
    status: AttributionStatus,
    basis: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Attribute an incident to a registered gang (confidence 0-1), or revise the attribution."""
    request = pb.AttributeToGangRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        incident_id=id_text(incident_id),
        gang_id=id_text(gang_id),
        confidence=confidence,
        status=ATTRIBUTION_STATUS.to_proto(status),
        basis=basis,
    )
    return write_call(
        _path("AttributeToGang"),
        request,
        pb.AttributeToGangResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def retract_attribution(
    *,
    incident_id: UUID,
    gang_id: UUID,
    reason: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Withdraw a current attribution of an incident to a gang, with a reason."""
    request = pb.RetractAttributionRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        incident_id=id_text(incident_id),
        gang_id=id_text(gang_id),
        reason=reason,
    )
    return write_call(
        _path("RetractAttribution"),
        request,
        pb.RetractAttributionResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def erase_personal_data(
    *,
    incident_id: UUID,
    reason: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Erase the personal data about participants recorded on an incident (its witness
    sources' names and references), with a reason; admins only.

    The registry destroys the key they were sealed with: from then on they read as
    "[erased]" (names) and "" (references). Erasing an incident twice is a broken rule.
    """
    request = pb.ErasePersonalDataRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        incident_id=id_text(incident_id),
        reason=reason,
    )
    return write_call(
        _path("ErasePersonalData"),
        request,
        pb.ErasePersonalDataResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def link_incidents(
    *,
    incident_id: UUID,
    related_incident_id: UUID,
    kind: LinkKind,
    note: str = "",
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record that two incidents are related (retaliation or series), seen from `incident_id`."""
    request = pb.LinkIncidentsRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        incident_id=id_text(incident_id),
        related_incident_id=id_text(related_incident_id),
        kind=LINK_KIND.to_proto(kind),
        note=note,
    )
    return write_call(
        _path("LinkIncidents"),
        request,
        pb.LinkIncidentsResponse,
        lambda r: conv.write_result(r.result),
        timeout,
    )


def get_incident(*, incident_id: UUID, timeout: float | None = None) -> Call[Aggregate[Incident]]:
    """Return an incident's current state and its full event history."""
    return read_call(
        _path("GetIncident"),
        pb.GetIncidentRequest(incident_id=id_text(incident_id)),
        pb.GetIncidentResponse,
        lambda r: Aggregate(conv.incident(r.incident), events(r.history)),
        timeout,
    )
