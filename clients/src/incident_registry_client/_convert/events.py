"""Event envelopes and their typed payloads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from incident_registry_client._convert import incidents as inc
from incident_registry_client._convert import resources as res
from incident_registry_client._convert.enums import (
    ATTRIBUTION_STATUS,
    LINK_KIND,
    TIME_PRECISION,
)
from incident_registry_client._convert.values import optional_uuid, time_field, uuid, uuids
from incident_registry_client.proto.incidents.v1 import events_pb2
from incident_registry_client.types.areas import AreaKind
from incident_registry_client.types.events import (
    AssetCaseOpened,
    AssetsConfiscated,
    AssetsReinvested,
    AssetsReleased,
    AssetsSeized,
    AttributedToGang,
    AttributionRetracted,
    CasualtiesRevised,
    EventMetadata,
    EventPayload,
    GangAliasAdded,
    GangRegistered,
    IncidentAmended,
    IncidentLinked,
    MunicipalityCommandAssigned,
    MunicipalityCommandReleased,
    MunicipalityCommandSlotCreated,
    PersonalDataErased,
    PoliceCommandUnified,
    RecordedEvent,
    ShootingReported,
    UnifiedCommandEnded,
    WaveDetected,
)


def _shooting(m: events_pb2.ShootingReported) -> ShootingReported:
    return ShootingReported(
        occurred_at=time_field(m, "occurred_at"),
        occurred_at_precision=TIME_PRECISION.from_proto(m.occurred_at_precision),
        reported_at=time_field(m, "reported_at"),
        municipality_code=m.municipality_code,
        police_zone_code=m.police_zone_code,
        address=m.address,
        location=inc.geo_point(m.location) if m.HasField("location") else None,
        weapons=inc.weapons(m.weapons),
        assailant_count=m.assailant_count,
        assailants_masked=m.assailants_masked,
        killed=m.killed,
        injured=m.injured,
        drug_nexus=m.drug_nexus,
        description=m.description,
        sources=inc.sources(m.sources),
        external_reference=m.external_reference,
    )


def _command_unified(m: events_pb2.PoliceCommandUnified) -> PoliceCommandUnified:
    return PoliceCommandUnified(
        municipality_codes=tuple(m.municipality_codes),
        police_zone_codes=tuple(m.police_zone_codes),
        lead_authority=m.lead_authority,
        reason=m.reason,
        starts_at=time_field(m, "starts_at"),
        planned_end_at=time_field(m, "planned_end_at"),
        triggering_incident_ids=uuids(m.triggering_incident_ids),
    )


def _wave(m: events_pb2.WaveDetected) -> WaveDetected:
    # The event names the area kind in words ("municipality", "police_zone").
    return WaveDetected(
        area_kind=AreaKind(m.area_kind),
        area_code=m.area_code,
        incident_ids=uuids(m.incident_ids),
        municipality_codes=tuple(m.municipality_codes),
        first_occurred_at=time_field(m, "first_occurred_at"),
        last_occurred_at=time_field(m, "last_occurred_at"),
        min_shootings=m.min_shootings,
        window_hours=m.window_hours,
        trigger_position=m.trigger_position,
    )


PAYLOADS: dict[str, Callable[[Any], EventPayload]] = {
    "shooting_reported": _shooting,
    "casualties_revised": lambda m: CasualtiesRevised(m.killed, m.injured, m.reason),
    "incident_amended": lambda m: IncidentAmended(
        correction=inc.correction(m.correction, m.update_mask),
        reason=m.reason,
        police_zone_code=m.police_zone_code,
    ),
    "attributed_to_gang": lambda m: AttributedToGang(
        gang_id=uuid(m.gang_id),
        confidence=m.confidence,
        status=ATTRIBUTION_STATUS.from_proto(m.status),
        basis=m.basis,
    ),
    "attribution_retracted": lambda m: AttributionRetracted(uuid(m.gang_id), m.reason),
    "personal_data_erased": lambda m: PersonalDataErased(m.reason),
    "incident_linked": lambda m: IncidentLinked(
        related_incident_id=uuid(m.related_incident_id),
        kind=LINK_KIND.from_proto(m.kind),
        note=m.note,
    ),
    "gang_registered": lambda m: GangRegistered(
        name=m.name,
        aliases=tuple(m.aliases),
        territory_municipality_codes=tuple(m.territory_municipality_codes),
        territory_description=m.territory_description,
    ),
    "gang_alias_added": lambda m: GangAliasAdded(m.alias),
    "police_command_unified": _command_unified,
    "unified_command_ended": lambda m: UnifiedCommandEnded(m.reason),
    "municipality_command_slot_created": lambda m: MunicipalityCommandSlotCreated(
        m.municipality_code
    ),
    "municipality_command_assigned": lambda m: MunicipalityCommandAssigned(uuid(m.command_id)),
    "municipality_command_released": lambda m: MunicipalityCommandReleased(uuid(m.command_id)),
    "asset_case_opened": lambda m: AssetCaseOpened(m.case_reference),
    "assets_seized": lambda m: AssetsSeized(
        municipality_code=m.municipality_code,
        gang_id=optional_uuid(m.gang_id),
        incident_ids=uuids(m.incident_ids),
        items=res.asset_items(m.items),
        description=m.description,
    ),
    "assets_confiscated": lambda m: AssetsConfiscated(
        m.amount_cents, m.court, m.decision_reference
    ),
    "assets_reinvested": lambda m: AssetsReinvested(
        m.amount_cents, res.beneficiary(m.beneficiary), m.note
    ),
    "assets_released": lambda m: AssetsReleased(
        m.amount_cents, m.court, m.decision_reference, m.reason
    ),
    "wave_detected": _wave,
}
"""The converter of each field of EventEnvelope's `payload` oneof."""


def recorded_event(message: events_pb2.EventEnvelope) -> RecordedEvent:
    """An EventEnvelope message as a dataclass."""
    m = message
    kind = m.WhichOneof("payload")
    return RecordedEvent(
        event_id=uuid(m.event_id),
        stream_id=uuid(m.stream_id),
        stream_type=m.stream_type,
        stream_version=m.stream_version,
        position=m.position,
        event_type=m.event_type,
        schema_version=m.schema_version,
        occurred_at=time_field(m, "occurred_at"),
        recorded_at=time_field(m, "recorded_at"),
        metadata=EventMetadata(
            actor=m.metadata.actor,
            correlation_id=m.metadata.correlation_id,
            causation_id=m.metadata.causation_id,
            request_id=m.metadata.request_id,
            trace_id=m.metadata.trace_id,
        ),
        payload=None if kind is None else PAYLOADS[kind](getattr(m, kind)),
        payload_json=m.payload_json,
    )


def events(messages: Iterable[events_pb2.EventEnvelope]) -> tuple[RecordedEvent, ...]:
    """Envelopes as dataclasses, in their order."""
    return tuple(recorded_event(e) for e in messages)
