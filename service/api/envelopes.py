"""Recorded domain events to EventEnvelope messages (typed payload and JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from incident_registry_client.proto.incidents.v1 import events_pb2, incident_pb2

from service.api import resources as res
from service.api.enums import ATTRIBUTION_STATUS, LINK_KIND, TIME_PRECISION
from service.api.proto_json import message_to_dict
from service.api.timestamps import stamp
from service.app.results import RecordedEvent
from service.domain.asset_case import AssetCase
from service.domain.command import MunicipalityCommandSlot, UnifiedCommand
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.wave import ViolenceWave

_EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "incident-registry:event")
_STREAM_TYPES = {
    cls.__name__: cls.STREAM_TYPE
    for cls in (Incident, Gang, UnifiedCommand, MunicipalityCommandSlot, AssetCase, ViolenceWave)
}


def event_id(stream_id: UUID, version: int) -> UUID:
    """Return the stable id of the event at `version` of a stream."""
    return uuid5(_EVENT_NAMESPACE, f"{stream_id}:{version}")


def _correction(corrections: dict[str, Any]) -> incident_pb2.IncidentCorrection:
    message = incident_pb2.IncidentCorrection()
    for name, value in corrections.items():
        if name == "occurred_at":
            message.occurred_at.FromDatetime(value)
        elif name == "occurred_at_precision":
            message.occurred_at_precision = TIME_PRECISION.proto(value)
        elif name == "location":
            point = res.geo_point(value)
            if point is not None:
                message.location.CopyFrom(point)
        elif name == "weapons":
            message.weapons.extend(res.weapons(tuple(value)))
        else:
            setattr(message, name, value)
    return message


def _opt_id(value: UUID | None) -> str:
    return str(value) if value else ""


PAYLOADS: dict[str, tuple[str, Callable[[Any], Message]]] = {
    "ShootingReported": (
        "shooting_reported",
        lambda e: events_pb2.ShootingReported(
            occurred_at=stamp(e.occurred_at),
            occurred_at_precision=TIME_PRECISION.proto(e.occurred_at_precision),
            reported_at=stamp(e.reported_at),
            municipality_code=e.municipality_code,
            police_zone_code=e.police_zone_code,
            address=e.address,
            location=res.geo_point(e.location),
            weapons=res.weapons(tuple(e.weapons)),
            assailant_count=e.assailant_count,
            assailants_masked=e.assailants_masked,
            killed=e.killed,
            injured=e.injured,
            drug_nexus=e.drug_nexus,
            description=e.description,
            sources=res.sources(tuple(e.sources)),
            external_reference=e.external_reference,
        ),
    ),
    "CasualtiesRevised": (
        "casualties_revised",
        lambda e: events_pb2.CasualtiesRevised(killed=e.killed, injured=e.injured, reason=e.reason),
    ),
    "IncidentAmended": (
        "incident_amended",
        lambda e: events_pb2.IncidentAmended(
            correction=_correction(e.corrections),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(e.corrections)),
            reason=e.reason,
            police_zone_code=e.police_zone_code,
        ),
    ),
    "AttributedToGang": (
        "attributed_to_gang",
        lambda e: events_pb2.AttributedToGang(
            gang_id=str(e.gang_id),
            confidence=e.confidence,
            status=ATTRIBUTION_STATUS.proto(e.status),
            basis=e.basis,
        ),
    ),
    "AttributionRetracted": (
        "attribution_retracted",
        lambda e: events_pb2.AttributionRetracted(gang_id=str(e.gang_id), reason=e.reason),
    ),
    "PersonalDataErased": (
        "personal_data_erased",
        lambda e: events_pb2.PersonalDataErased(reason=e.reason),
    ),
    "IncidentLinked": (
        "incident_linked",
        lambda e: events_pb2.IncidentLinked(
            related_incident_id=str(e.related_incident_id),
            kind=LINK_KIND.proto(e.kind),
            note=e.note,
        ),
    ),
    "GangRegistered": (
        "gang_registered",
        lambda e: events_pb2.GangRegistered(
            name=e.name,
            aliases=list(e.aliases),
            territory_municipality_codes=list(e.territory_municipality_codes),
            territory_description=e.territory_description,
        ),
    ),
    "GangAliasAdded": ("gang_alias_added", lambda e: events_pb2.GangAliasAdded(alias=e.alias)),
    "PoliceCommandUnified": (
        "police_command_unified",
        lambda e: events_pb2.PoliceCommandUnified(
            municipality_codes=list(e.municipality_codes),
            police_zone_codes=list(e.police_zone_codes),
            lead_authority=e.lead_authority,
            reason=e.reason,
            starts_at=stamp(e.starts_at),
            planned_end_at=stamp(e.planned_end_at),
            triggering_incident_ids=[str(i) for i in e.triggering_incident_ids],
        ),
    ),
    "UnifiedCommandEnded": (
        "unified_command_ended",
        lambda e: events_pb2.UnifiedCommandEnded(reason=e.reason),
    ),
    "MunicipalityCommandSlotCreated": (
        "municipality_command_slot_created",
        lambda e: events_pb2.MunicipalityCommandSlotCreated(municipality_code=e.municipality_code),
    ),
    "MunicipalityCommandAssigned": (
        "municipality_command_assigned",
        lambda e: events_pb2.MunicipalityCommandAssigned(command_id=str(e.command_id)),
    ),
    "MunicipalityCommandReleased": (
        "municipality_command_released",
        lambda e: events_pb2.MunicipalityCommandReleased(command_id=str(e.command_id)),
    ),
    "AssetCaseOpened": (
        "asset_case_opened",
        lambda e: events_pb2.AssetCaseOpened(case_reference=e.case_reference),
    ),
    "AssetsSeized": (
        "assets_seized",
        lambda e: events_pb2.AssetsSeized(
            municipality_code=e.municipality_code,
            gang_id=_opt_id(e.gang_id),
            incident_ids=[str(i) for i in e.incident_ids],
            items=res.asset_items(tuple(e.items)),
            description=e.description,
        ),
    ),
    "AssetsConfiscated": (
        "assets_confiscated",
        lambda e: events_pb2.AssetsConfiscated(
            amount_cents=e.amount_cents, court=e.court, decision_reference=e.decision_reference
        ),
    ),
    "AssetsReinvested": (
        "assets_reinvested",
        lambda e: events_pb2.AssetsReinvested(
            amount_cents=e.amount_cents, beneficiary=res.beneficiary(e.beneficiary), note=e.note
        ),
    ),
    "AssetsReleased": (
        "assets_released",
        lambda e: events_pb2.AssetsReleased(
            amount_cents=e.amount_cents,
            court=e.court,
            decision_reference=e.decision_reference,
            reason=e.reason,
        ),
    ),
    "WaveDetected": (
        "wave_detected",
        lambda e: events_pb2.WaveDetected(
            area_kind=e.area_kind,
            area_code=e.area_code,
            incident_ids=[str(i) for i in e.incident_ids],
            municipality_codes=list(e.municipality_codes),
            first_occurred_at=stamp(e.first_occurred_at),
            last_occurred_at=stamp(e.last_occurred_at),
            min_shootings=e.min_shootings,
            window_hours=e.window_hours,
            trigger_position=e.trigger_position,
        ),
    ),
}


def envelope(
    recorded: RecordedEvent, *, typed: bool = True, as_json: bool = True
) -> events_pb2.EventEnvelope:
    """Wrap a recorded domain event with its identity, position, times and payload.

    `typed` and `as_json` choose the payload's forms (both by default).
    """
    domain_event: Any = recorded.event
    event_type = type(domain_event).__name__
    owner = type(domain_event).__qualname__.split(".", 1)[0]
    field_name, convert = PAYLOADS[event_type]
    payload = convert(domain_event)
    metadata = domain_event.metadata
    message = events_pb2.EventEnvelope(
        event_id=str(event_id(domain_event.originator_id, domain_event.originator_version)),
        stream_id=str(domain_event.originator_id),
        stream_type=_STREAM_TYPES.get(owner, owner),
        stream_version=domain_event.originator_version,
        position=recorded.position,
        event_type=event_type,
        schema_version=type(domain_event).class_version,
        occurred_at=stamp(domain_event.occurred_at),
        recorded_at=stamp(domain_event.timestamp),
        metadata=events_pb2.EventMetadata(
            actor=metadata.get("actor", ""),
            correlation_id=metadata.get("correlation_id", ""),
            causation_id=metadata.get("causation_id", ""),
            request_id=metadata.get("request_id", ""),
            trace_id=metadata.get("trace_id", ""),
        ),
    )
    if as_json:
        message.payload_json = json.dumps(
            message_to_dict(payload), separators=(",", ":"), sort_keys=True
        )
    if typed:
        getattr(message, field_name).CopyFrom(payload)
    return message
