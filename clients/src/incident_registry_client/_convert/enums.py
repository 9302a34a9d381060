"""One EnumMap per enum of the API."""

from __future__ import annotations

from incident_registry_client._convert.values import EnumMap
from incident_registry_client.proto.incidents.v1 import (
    asset_pb2,
    asset_statistics_service_pb2,
    command_pb2,
    event_log_service_pb2,
    incident_pb2,
    incident_query_service_pb2,
    projection_admin_service_pb2,
    statistics_service_pb2,
)
from incident_registry_client.types.areas import AreaKind, PeriodKind
from incident_registry_client.types.asset_statistics import AssetRecoveryGrouping
from incident_registry_client.types.assets import AssetKind, BeneficiaryKind
from incident_registry_client.types.commands import CommandStatus
from incident_registry_client.types.incidents import (
    AttributionStatus,
    LinkKind,
    SourceKind,
    TimePrecision,
    WeaponKind,
)
from incident_registry_client.types.log import PayloadFormat, ReadDirection
from incident_registry_client.types.projections import ProjectionState
from incident_registry_client.types.queries import ConfidenceBand, IncidentAttributionStatus

TIME_PRECISION = EnumMap(TimePrecision, incident_pb2.TimePrecision)
WEAPON_KIND = EnumMap(WeaponKind, incident_pb2.WeaponKind)
SOURCE_KIND = EnumMap(SourceKind, incident_pb2.SourceKind)
ATTRIBUTION_STATUS = EnumMap(AttributionStatus, incident_pb2.AttributionStatus)
LINK_KIND = EnumMap(LinkKind, incident_pb2.LinkKind)
COMMAND_STATUS = EnumMap(CommandStatus, command_pb2.CommandStatus)
ASSET_KIND = EnumMap(AssetKind, asset_pb2.AssetKind)
BENEFICIARY_KIND = EnumMap(BeneficiaryKind, asset_pb2.BeneficiaryKind)
READ_DIRECTION = EnumMap(ReadDirection, event_log_service_pb2.ReadDirection)
PAYLOAD_FORMAT = EnumMap(PayloadFormat, event_log_service_pb2.PayloadFormat)
AREA_KIND = EnumMap(AreaKind, statistics_service_pb2.AreaKind)
PERIOD_KIND = EnumMap(PeriodKind, statistics_service_pb2.PeriodKind)
INCIDENT_ATTRIBUTION_STATUS = EnumMap(
    IncidentAttributionStatus, incident_query_service_pb2.IncidentAttributionStatus
)
CONFIDENCE_BAND = EnumMap(ConfidenceBand, incident_query_service_pb2.ConfidenceBand)
ASSET_RECOVERY_GROUPING = EnumMap(
    AssetRecoveryGrouping, asset_statistics_service_pb2.AssetRecoveryGrouping
)
PROJECTION_STATE = EnumMap(ProjectionState, projection_admin_service_pb2.ProjectionState)

ALL = (
    TIME_PRECISION,
    WEAPON_KIND,
    SOURCE_KIND,
    ATTRIBUTION_STATUS,
    LINK_KIND,
    COMMAND_STATUS,
    ASSET_KIND,
    BENEFICIARY_KIND,
    READ_DIRECTION,
    PAYLOAD_FORMAT,
    AREA_KIND,
    PERIOD_KIND,
    INCIDENT_ATTRIBUTION_STATUS,
    CONFIDENCE_BAND,
    ASSET_RECOVERY_GROUPING,
    PROJECTION_STATE,
)
"""Every map, for the test that each protobuf enum value has its Python member."""
