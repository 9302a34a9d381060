"""Gangs, unified commands and asset cases."""

from __future__ import annotations

from collections.abc import Iterable

from incident_registry_client._convert.enums import ASSET_KIND, BENEFICIARY_KIND, COMMAND_STATUS
from incident_registry_client._convert.values import optional_uuid, time_field, uuid, uuids
from incident_registry_client.proto.incidents.v1 import (
    asset_pb2,
    command_pb2,
    command_query_service_pb2,
    gang_pb2,
)
from incident_registry_client.types.assets import (
    AssetCase,
    AssetItem,
    Beneficiary,
    CourtDecision,
    Reinvestment,
    Seizure,
)
from incident_registry_client.types.commands import (
    MunicipalityCommand,
    MunicipalityCommands,
    UnifiedCommand,
)
from incident_registry_client.types.gangs import Gang


def gang(message: gang_pb2.Gang) -> Gang:
    """A Gang message as a dataclass."""
    return Gang(
        gang_id=uuid(message.gang_id),
        version=message.version,
        name=message.name,
        aliases=tuple(message.aliases),
        territory_municipality_codes=tuple(message.territory_municipality_codes),
        territory_description=message.territory_description,
        recorded_at=time_field(message, "recorded_at"),
        updated_at=time_field(message, "updated_at"),
    )


def unified_command(message: command_pb2.UnifiedCommand) -> UnifiedCommand:
    """A UnifiedCommand message as a dataclass."""
    m = message
    return UnifiedCommand(
        command_id=uuid(m.command_id),
        version=m.version,
        status=COMMAND_STATUS.from_proto(m.status),
        municipality_codes=tuple(m.municipality_codes),
        police_zone_codes=tuple(m.police_zone_codes),
        lead_authority=m.lead_authority,
        reason=m.reason,
        starts_at=time_field(m, "starts_at"),
        planned_end_at=time_field(m, "planned_end_at"),
        ended_at=time_field(m, "ended_at"),
        end_reason=m.end_reason,
        triggering_incident_ids=uuids(m.triggering_incident_ids),
        recorded_at=time_field(m, "recorded_at"),
        updated_at=time_field(m, "updated_at"),
    )


def municipality_commands(
    message: command_query_service_pb2.GetMunicipalityCommandsResponse,
) -> MunicipalityCommands:
    """A GetMunicipalityCommands response as a dataclass."""
    return MunicipalityCommands(
        municipalities=tuple(
            MunicipalityCommand(
                municipality_code=m.municipality_code,
                municipality_name=m.municipality_name,
                police_zone_code=m.police_zone_code,
                active_command=(
                    unified_command(m.active_command) if m.HasField("active_command") else None
                ),
            )
            for m in message.municipalities
        ),
        position=message.position,
    )


def asset_item_messages(items: Iterable[AssetItem]) -> list[asset_pb2.AssetItem]:
    """Seized items for a request."""
    return [
        asset_pb2.AssetItem(
            kind=ASSET_KIND.to_proto(item.kind),
            description=item.description,
            estimated_value_cents=item.estimated_value_cents,
            quantity=item.quantity,
            weight_kg=item.weight_kg,
        )
        for item in items
    ]


def asset_items(messages: Iterable[asset_pb2.AssetItem]) -> tuple[AssetItem, ...]:
    """AssetItem messages as dataclasses."""
    return tuple(
        AssetItem(
            kind=ASSET_KIND.from_proto(m.kind),
            estimated_value_cents=m.estimated_value_cents,
            description=m.description,
            quantity=m.quantity,
            weight_kg=m.weight_kg,
        )
        for m in messages
    )


def beneficiary_message(value: Beneficiary) -> asset_pb2.Beneficiary:
    """A beneficiary for a request."""
    return asset_pb2.Beneficiary(kind=BENEFICIARY_KIND.to_proto(value.kind), name=value.name)


def beneficiary(message: asset_pb2.Beneficiary) -> Beneficiary:
    """A Beneficiary message as a dataclass."""
    return Beneficiary(kind=BENEFICIARY_KIND.from_proto(message.kind), name=message.name)


def _decision(message: asset_pb2.CourtDecision) -> CourtDecision:
    return CourtDecision(
        amount_cents=message.amount_cents,
        court=message.court,
        decision_reference=message.decision_reference,
        reason=message.reason,
        decided_at=time_field(message, "decided_at"),
    )


def asset_case(message: asset_pb2.AssetCase) -> AssetCase:
    """An AssetCase message as a dataclass."""
    m = message
    return AssetCase(
        case_id=uuid(m.case_id),
        version=m.version,
        case_reference=m.case_reference,
        seizures=tuple(
            Seizure(
                seized_at=time_field(s, "seized_at"),
                municipality_code=s.municipality_code,
                gang_id=optional_uuid(s.gang_id),
                incident_ids=uuids(s.incident_ids),
                items=asset_items(s.items),
                description=s.description,
            )
            for s in m.seizures
        ),
        seized_value_cents=m.seized_value_cents,
        confiscated_value_cents=m.confiscated_value_cents,
        reinvested_value_cents=m.reinvested_value_cents,
        released_value_cents=m.released_value_cents,
        available_value_cents=m.available_value_cents,
        confiscations=tuple(_decision(d) for d in m.confiscations),
        releases=tuple(_decision(d) for d in m.releases),
        reinvestments=tuple(
            Reinvestment(
                amount_cents=r.amount_cents,
                beneficiary=beneficiary(r.beneficiary),
                note=r.note,
                reinvested_at=time_field(r, "reinvested_at"),
            )
            for r in m.reinvestments
        ),
        currency=m.currency,
        recorded_at=time_field(m, "recorded_at"),
        updated_at=time_field(m, "updated_at"),
    )
