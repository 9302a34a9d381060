"""Two-way tables between protobuf enum numbers and domain enumerations."""

from __future__ import annotations

from enum import Enum
from typing import Any, Generic, TypeVar

from incident_registry_client.proto.incidents.v1 import asset_pb2, command_pb2, incident_pb2

from service.domain.values import (
    AssetKind,
    AttributionStatus,
    BeneficiaryKind,
    LinkKind,
    SourceKind,
    TimePrecision,
    WeaponKind,
)

E = TypeVar("E", bound=Enum)


class EnumTable(Generic[E]):
    """Maps the numbers of one protobuf enum to one domain enumeration and back."""

    def __init__(self, proto_name: str, pairs: dict[int, E]) -> None:
        self.proto_name = proto_name
        self._to_domain = pairs
        self._to_proto = {member: number for number, member in pairs.items()}

    def domain(self, number: int) -> E | None:
        """Return the domain member, or None for UNSPECIFIED and unknown numbers."""
        return self._to_domain.get(number)

    def proto(self, member: E) -> Any:
        """Return the protobuf number of a domain member (typed as the generated enum)."""
        return self._to_proto[member]


TIME_PRECISION = EnumTable(
    "TimePrecision",
    {
        incident_pb2.TIME_PRECISION_EXACT: TimePrecision.EXACT,
        incident_pb2.TIME_PRECISION_MINUTE: TimePrecision.MINUTE,
        incident_pb2.TIME_PRECISION_HOUR: TimePrecision.HOUR,
        incident_pb2.TIME_PRECISION_DAY: TimePrecision.DAY,
        incident_pb2.TIME_PRECISION_MONTH: TimePrecision.MONTH,
    },
)
WEAPON_KIND = EnumTable(
    "WeaponKind",
    {
        incident_pb2.WEAPON_KIND_HANDGUN: WeaponKind.HANDGUN,
        incident_pb2.WEAPON_KIND_ASSAULT_RIFLE: WeaponKind.ASSAULT_RIFLE,
        incident_pb2.WEAPON_KIND_SHOTGUN: WeaponKind.SHOTGUN,
        incident_pb2.WEAPON_KIND_OTHER: WeaponKind.OTHER,
        incident_pb2.WEAPON_KIND_UNKNOWN: WeaponKind.UNKNOWN,
    },
)
SOURCE_KIND = EnumTable(
    "SourceKind",
    {
        incident_pb2.SOURCE_KIND_POLICE_REPORT: SourceKind.POLICE_REPORT,
        incident_pb2.SOURCE_KIND_PROSECUTOR: SourceKind.PROSECUTOR,
        incident_pb2.SOURCE_KIND_PRESS: SourceKind.PRESS,
        incident_pb2.SOURCE_KIND_WITNESS: SourceKind.WITNESS,
        incident_pb2.SOURCE_KIND_HOSPITAL: SourceKind.HOSPITAL,
        incident_pb2.SOURCE_KIND_OTHER: SourceKind.OTHER,
    },
)
ATTRIBUTION_STATUS = EnumTable(
    "AttributionStatus",
    {
        incident_pb2.ATTRIBUTION_STATUS_SUSPECTED: AttributionStatus.SUSPECTED,
        incident_pb2.ATTRIBUTION_STATUS_CONFIRMED: AttributionStatus.CONFIRMED,
    },
)
LINK_KIND = EnumTable(
    "LinkKind",
    {
        incident_pb2.LINK_KIND_RETALIATION_FOR: LinkKind.RETALIATION_FOR,
        incident_pb2.LINK_KIND_RETALIATED_BY: LinkKind.RETALIATED_BY,
        incident_pb2.LINK_KIND_SAME_SERIES: LinkKind.SAME_SERIES,
    },
)
ASSET_KIND = EnumTable(
    "AssetKind",
    {
        asset_pb2.ASSET_KIND_CASH: AssetKind.CASH,
        asset_pb2.ASSET_KIND_VEHICLE: AssetKind.VEHICLE,
        asset_pb2.ASSET_KIND_REAL_ESTATE: AssetKind.REAL_ESTATE,
        asset_pb2.ASSET_KIND_WEAPON: AssetKind.WEAPON,
        asset_pb2.ASSET_KIND_DRUGS: AssetKind.DRUGS,
        asset_pb2.ASSET_KIND_CRYPTO: AssetKind.CRYPTO,
        asset_pb2.ASSET_KIND_OTHER: AssetKind.OTHER,
    },
)
BENEFICIARY_KIND = EnumTable(
    "BeneficiaryKind",
    {
        asset_pb2.BENEFICIARY_KIND_LAW_ENFORCEMENT: BeneficiaryKind.LAW_ENFORCEMENT,
        asset_pb2.BENEFICIARY_KIND_SOCIAL_PROGRAMME: BeneficiaryKind.SOCIAL_PROGRAMME,
    },
)
COMMAND_ACTIVE = command_pb2.COMMAND_STATUS_ACTIVE
COMMAND_ENDED = command_pb2.COMMAND_STATUS_ENDED
