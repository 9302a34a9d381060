"""Incidents: weapons, sources, coordinates, attributions, links, corrections."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.field_mask_pb2 import FieldMask

from incident_registry_client._convert.enums import (
    ATTRIBUTION_STATUS,
    LINK_KIND,
    SOURCE_KIND,
    TIME_PRECISION,
    WEAPON_KIND,
)
from incident_registry_client._convert.values import (
    optional_timestamp,
    time_field,
    uuid,
)
from incident_registry_client.proto.incidents.v1 import common_pb2, incident_pb2
from incident_registry_client.types.common import GeoPoint, WriteResult
from incident_registry_client.types.incidents import (
    Attribution,
    Incident,
    IncidentCorrection,
    IncidentLink,
    Source,
    Weapon,
)

T = TypeVar("T")


def write_result(message: common_pb2.WriteResult) -> WriteResult:
    """A WriteResult message as a dataclass."""
    return WriteResult(
        aggregate_id=uuid(message.aggregate_id),
        version=message.version,
        position=message.position,
        replayed=message.replayed,
    )


def geo_point_message(point: GeoPoint | None) -> common_pb2.GeoPoint | None:
    """A coordinate for a request, None to leave it unset."""
    if point is None:
        return None
    return common_pb2.GeoPoint(latitude=point.latitude, longitude=point.longitude)


def geo_point(message: common_pb2.GeoPoint) -> GeoPoint:
    """A GeoPoint message as a dataclass."""
    return GeoPoint(latitude=message.latitude, longitude=message.longitude)


def weapon_messages(weapons: Iterable[Weapon]) -> list[incident_pb2.Weapon]:
    """Weapons for a request."""
    return [incident_pb2.Weapon(kind=WEAPON_KIND.to_proto(w.kind), count=w.count) for w in weapons]


def weapons(messages: Iterable[incident_pb2.Weapon]) -> tuple[Weapon, ...]:
    """Weapon messages as dataclasses."""
    return tuple(Weapon(kind=WEAPON_KIND.from_proto(w.kind), count=w.count) for w in messages)


def source_messages(sources: Iterable[Source]) -> list[incident_pb2.Source]:
    """Sources for a request."""
    return [
        incident_pb2.Source(
            kind=SOURCE_KIND.to_proto(s.kind),
            name=s.name,
            reference=s.reference,
            retrieved_at=optional_timestamp(s.retrieved_at),
        )
        for s in sources
    ]


def sources(messages: Iterable[incident_pb2.Source]) -> tuple[Source, ...]:
    """Source messages as dataclasses."""
    return tuple(
        Source(
            kind=SOURCE_KIND.from_proto(s.kind),
            name=s.name,
            reference=s.reference,
            retrieved_at=time_field(s, "retrieved_at"),
        )
        for s in messages
    )


def correction_message(
    correction: IncidentCorrection,
) -> tuple[incident_pb2.IncidentCorrection, FieldMask]:
    """A correction and its update mask (the fields that are not None)."""
    c = correction
    message = incident_pb2.IncidentCorrection(
        occurred_at=optional_timestamp(c.occurred_at),
        occurred_at_precision=TIME_PRECISION.optional_to_proto(c.occurred_at_precision),
        municipality_code=c.municipality_code or "",
        address=c.address or "",
        location=geo_point_message(c.location),
        weapons=weapon_messages(c.weapons or ()),
        assailant_count=c.assailant_count or 0,
        assailants_masked=bool(c.assailants_masked),
        drug_nexus=bool(c.drug_nexus),
        description=c.description or "",
    )
    return message, FieldMask(paths=list(c.corrected_fields))


def correction(message: incident_pb2.IncidentCorrection, mask: FieldMask) -> IncidentCorrection:
    """A correction message as a dataclass holding only the fields in `mask`."""
    paths = set(mask.paths)
    location = geo_point(message.location) if message.HasField("location") else None
    return IncidentCorrection(
        occurred_at=time_field(message, "occurred_at") if "occurred_at" in paths else None,
        occurred_at_precision=(
            TIME_PRECISION.from_proto(message.occurred_at_precision)
            if "occurred_at_precision" in paths
            else None
        ),
        municipality_code=_masked(paths, "municipality_code", message.municipality_code),
        address=_masked(paths, "address", message.address),
        location=location if "location" in paths else None,
        clear_location="location" in paths and location is None,
        weapons=weapons(message.weapons) if "weapons" in paths else None,
        assailant_count=_masked(paths, "assailant_count", message.assailant_count),
        assailants_masked=_masked(paths, "assailants_masked", message.assailants_masked),
        drug_nexus=_masked(paths, "drug_nexus", message.drug_nexus),
        description=_masked(paths, "description", message.description),
    )


def _masked(paths: set[str], name: str, value: T) -> T | None:
    return value if name in paths else None


def attribution(message: incident_pb2.Attribution) -> Attribution:
    """An Attribution message as a dataclass."""
    return Attribution(
        gang_id=uuid(message.gang_id),
        confidence=message.confidence,
        status=ATTRIBUTION_STATUS.from_proto(message.status),
        basis=message.basis,
        attributed_at=time_field(message, "attributed_at"),
    )


def link(message: incident_pb2.IncidentLink) -> IncidentLink:
    """An IncidentLink message as a dataclass."""
    return IncidentLink(
        related_incident_id=uuid(message.related_incident_id),
        kind=LINK_KIND.from_proto(message.kind),
        note=message.note,
    )


def incident(message: incident_pb2.Incident) -> Incident:
    """An Incident message as a dataclass."""
    m = message
    return Incident(
        incident_id=uuid(m.incident_id),
        version=m.version,
        occurred_at=time_field(m, "occurred_at"),
        occurred_at_precision=TIME_PRECISION.from_proto(m.occurred_at_precision),
        reported_at=time_field(m, "reported_at"),
        municipality_code=m.municipality_code,
        police_zone_code=m.police_zone_code,
        address=m.address,
        location=geo_point(m.location) if m.HasField("location") else None,
        weapons=weapons(m.weapons),
        assailant_count=m.assailant_count,
        assailants_masked=m.assailants_masked,
        killed=m.killed,
        injured=m.injured,
        drug_nexus=m.drug_nexus,
        description=m.description,
        sources=sources(m.sources),
        external_reference=m.external_reference,
        attributions=tuple(attribution(a) for a in m.attributions),
        links=tuple(link(x) for x in m.links),
        recorded_at=time_field(m, "recorded_at"),
        updated_at=time_field(m, "updated_at"),
    )
