"""Aggregates to protobuf resource messages."""

from __future__ import annotations

from incident_registry_client.proto.incidents.v1 import (
    asset_pb2,
    command_pb2,
    common_pb2,
    gang_pb2,
    incident_pb2,
)

from service.api.enums import (
    ASSET_KIND,
    ATTRIBUTION_STATUS,
    BENEFICIARY_KIND,
    COMMAND_ACTIVE,
    COMMAND_ENDED,
    LINK_KIND,
    SOURCE_KIND,
    TIME_PRECISION,
    WEAPON_KIND,
)
from service.api.timestamps import stamp
from service.domain.asset_case import AssetCase, CourtDecisionRecord
from service.domain.command import UnifiedCommand
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.values import AssetItem, Beneficiary, GeoPoint, Source, Weapon


def geo_point(point: GeoPoint | None) -> common_pb2.GeoPoint | None:
    """GeoPoint to its message (None stays unset)."""
    if point is None:
        return None
    return common_pb2.GeoPoint(latitude=point.latitude, longitude=point.longitude)


def weapons(values: tuple[Weapon, ...]) -> list[incident_pb2.Weapon]:
    """Weapons to their messages."""
    return [incident_pb2.Weapon(kind=WEAPON_KIND.proto(w.kind), count=w.count) for w in values]


def sources(values: tuple[Source, ...]) -> list[incident_pb2.Source]:
    """Sources to their messages."""
    return [
        incident_pb2.Source(
            kind=SOURCE_KIND.proto(s.kind),
            name=s.name,
            reference=s.reference,
            retrieved_at=stamp(s.retrieved_at),
        )
        for s in values
    ]


def asset_items(values: tuple[AssetItem, ...]) -> list[asset_pb2.AssetItem]:
    """Asset items to their messages."""
    return [
        asset_pb2.AssetItem(
            kind=ASSET_KIND.proto(i.kind),
            description=i.description,
            estimated_value_cents=i.estimated_value_cents,
            quantity=i.quantity,
            weight_kg=i.weight_kg,
        )
        for i in values
    ]


def beneficiary(value: Beneficiary) -> asset_pb2.Beneficiary:
    """Beneficiary to its message."""
    return asset_pb2.Beneficiary(kind=BENEFICIARY_KIND.proto(value.kind), name=value.name)


def incident(agg: Incident) -> incident_pb2.Incident:
    """Incident to its resource message."""
    return incident_pb2.Incident(
        incident_id=str(agg.id),
        version=agg.version,
        occurred_at=stamp(agg.occurred_at),
        occurred_at_precision=TIME_PRECISION.proto(agg.occurred_at_precision),
        reported_at=stamp(agg.reported_at),
        municipality_code=agg.municipality_code,
        police_zone_code=agg.police_zone_code,
        address=agg.address,
        location=geo_point(agg.location),
        weapons=weapons(agg.weapons),
        assailant_count=agg.assailant_count,
        assailants_masked=agg.assailants_masked,
        killed=agg.killed,
        injured=agg.injured,
        drug_nexus=agg.drug_nexus,
        description=agg.description,
        sources=sources(agg.sources),
        external_reference=agg.external_reference,
        attributions=[
            incident_pb2.Attribution(
                gang_id=str(a.gang_id),
                confidence=a.confidence,
                status=ATTRIBUTION_STATUS.proto(a.status),
                basis=a.basis,
                attributed_at=stamp(a.attributed_at),
            )
            for a in agg.attributions.values()
        ],
        links=[
            incident_pb2.IncidentLink(
                related_incident_id=str(link.related_incident_id),
                kind=LINK_KIND.proto(link.kind),
                note=link.note,
            )
            for link in agg.links.values()
        ],
        recorded_at=stamp(agg.created_on),
        updated_at=stamp(agg.modified_on),
    )


def gang(agg: Gang) -> gang_pb2.Gang:
    """Gang to its resource message."""
    return gang_pb2.Gang(
        gang_id=str(agg.id),
        version=agg.version,
        name=agg.name,
        aliases=list(agg.aliases),
        territory_municipality_codes=list(agg.territory_municipality_codes),
        territory_description=agg.territory_description,
        recorded_at=stamp(agg.created_on),
        updated_at=stamp(agg.modified_on),
    )


def unified_command(agg: UnifiedCommand) -> command_pb2.UnifiedCommand:
    """UnifiedCommand to its resource message."""
    return command_pb2.UnifiedCommand(
        command_id=str(agg.id),
        version=agg.version,
        status=COMMAND_ACTIVE if agg.is_active else COMMAND_ENDED,
        municipality_codes=list(agg.municipality_codes),
        police_zone_codes=list(agg.police_zone_codes),
        lead_authority=agg.lead_authority,
        reason=agg.reason,
        starts_at=stamp(agg.starts_at),
        planned_end_at=stamp(agg.planned_end_at),
        ended_at=stamp(agg.ended_at),
        end_reason=agg.end_reason,
        triggering_incident_ids=[str(i) for i in agg.triggering_incident_ids],
        recorded_at=stamp(agg.created_on),
        updated_at=stamp(agg.modified_on),
    )


def _decision(record: CourtDecisionRecord) -> asset_pb2.CourtDecision:
    return asset_pb2.CourtDecision(
        amount_cents=record.amount_cents,
        court=record.court,
        decision_reference=record.decision_reference,
        reason=record.reason,
        decided_at=stamp(record.decided_at),
    )


def asset_case(agg: AssetCase, currency: str) -> asset_pb2.AssetCase:
    """AssetCase to its resource message."""
    return asset_pb2.AssetCase(
        case_id=str(agg.id),
        version=agg.version,
        case_reference=agg.case_reference,
        seizures=[
            asset_pb2.Seizure(
                seized_at=stamp(s.seized_at),
                municipality_code=s.municipality_code,
                gang_id=str(s.gang_id) if s.gang_id else "",
                incident_ids=[str(i) for i in s.incident_ids],
                items=asset_items(s.items),
                description=s.description,
            )
            for s in agg.seizures
        ],
        seized_value_cents=agg.seized_cents,
        confiscated_value_cents=agg.confiscated_cents,
        reinvested_value_cents=agg.reinvested_cents,
        released_value_cents=agg.released_cents,
        available_value_cents=agg.available_cents,
        confiscations=[_decision(d) for d in agg.confiscations],
        releases=[_decision(d) for d in agg.releases],
        reinvestments=[
            asset_pb2.Reinvestment(
                amount_cents=r.amount_cents,
                beneficiary=beneficiary(r.beneficiary),
                note=r.note,
                reinvested_at=stamp(r.reinvested_at),
            )
            for r in agg.reinvestments
        ],
        currency=currency,
        recorded_at=stamp(agg.created_on),
        updated_at=stamp(agg.modified_on),
    )
