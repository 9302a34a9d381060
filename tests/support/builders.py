"""Valid requests with overrides, and readers of the rich error details of failed calls.

Every builder returns a request the registry accepts as is; keyword overrides replace fields,
and an override of None leaves the field unset (e.g. ``shooting(occurred_at=None)``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from incident_registry_client.proto.incidents.v1 import (
    asset_pb2,
    asset_service_pb2,
    command_service_pb2,
    common_pb2,
    gang_service_pb2,
    incident_pb2,
    incident_service_pb2,
)

M = TypeVar("M", bound=Message)

ACTOR = "analyst@fedpol.example"
ACTOR_METADATA = (("x-actor", ACTOR),)

# Brussels area catalog: police zone 5341 (Midi) covers Anderlecht, Forest and Saint-Gilles.
ANDERLECHT = "21001"
MIDI_ZONE = "5341"
MIDI_MUNICIPALITIES = ("21001", "21007", "21013")
ANDERLECHT_POINT = common_pb2.GeoPoint(latitude=50.8365, longitude=4.3086)

_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
)


def ts(dt: datetime) -> Timestamp:
    """A protobuf Timestamp for an aware datetime."""
    stamp = Timestamp()
    stamp.FromDatetime(dt)
    return stamp


def ago(**delta: float) -> datetime:
    """Now minus a timedelta, in UTC, to the microsecond the registry keeps."""
    return datetime.now(UTC) - timedelta(**delta)


def request_id() -> str:
    """A fresh idempotency key."""
    return str(uuid4())


def _build(cls: type[M], defaults: dict[str, Any], overrides: dict[str, Any]) -> M:
    fields = {**defaults, **overrides}
    return cls(**{name: value for name, value in fields.items() if value is not None})


# --- IncidentService ---------------------------------------------------------------------


def shooting(**overrides: Any) -> incident_service_pb2.ReportShootingRequest:
    """A kalashnikov shooting in Anderlecht an hour ago, one injured."""
    occurred = ago(hours=1)
    defaults = {
        "request_id": request_id(),
        "occurred_at": ts(occurred),
        "occurred_at_precision": incident_pb2.TIME_PRECISION_MINUTE,
        "reported_at": ts(occurred + timedelta(minutes=10)),
        "municipality_code": ANDERLECHT,
        "address": "Place de la Vaillance",
        "location": ANDERLECHT_POINT,
        "weapons": [incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_ASSAULT_RIFLE, count=1)],
        "assailant_count": 2,
        "assailants_masked": True,
        "killed": 0,
        "injured": 1,
        "drug_nexus": True,
        "description": "Shots fired at a drug selling point",
        "sources": [
            incident_pb2.Source(
                kind=incident_pb2.SOURCE_KIND_PRESS,
                name="Le Soir",
                reference="https://example.org/article/1",
                retrieved_at=ts(occurred + timedelta(minutes=30)),
            )
        ],
        "external_reference": "BR.12.L1.000123/25",
    }
    return _build(incident_service_pb2.ReportShootingRequest, defaults, overrides)


def casualties(
    incident_id: str, /, **overrides: Any
) -> incident_service_pb2.ReviseCasualtiesRequest:
    """The injured victim died in hospital."""
    defaults = {
        "request_id": request_id(),
        "incident_id": incident_id,
        "killed": 1,
        "injured": 0,
        "reason": "victim died in hospital",
    }
    return _build(incident_service_pb2.ReviseCasualtiesRequest, defaults, overrides)


def amendment(
    incident_id: str, /, *paths: str, **overrides: Any
) -> incident_service_pb2.AmendIncidentRequest:
    """A correction of the given paths (default: the weapons were handguns)."""
    defaults = {
        "request_id": request_id(),
        "incident_id": incident_id,
        "correction": incident_pb2.IncidentCorrection(
            weapons=[incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=2)],
            address="Rue Wayez 1",
        ),
        "update_mask": field_mask_pb2.FieldMask(paths=list(paths or ("weapons",))),
        "reason": "ballistics report",
    }
    return _build(incident_service_pb2.AmendIncidentRequest, defaults, overrides)


def attribution(
    incident_id: str, gang_id: str, /, **overrides: Any
) -> incident_service_pb2.AttributeToGangRequest:
    """A suspected attribution at 0.7 confidence."""
    defaults = {
        "request_id": request_id(),
        "incident_id": incident_id,
        "gang_id": gang_id,
        "confidence": 0.7,
        "status": incident_pb2.ATTRIBUTION_STATUS_SUSPECTED,
        "basis": "territory dispute over the selling point",
    }
    return _build(incident_service_pb2.AttributeToGangRequest, defaults, overrides)


def retraction(
    incident_id: str, gang_id: str, /, **overrides: Any
) -> incident_service_pb2.RetractAttributionRequest:
    """A retraction of the attribution to a gang."""
    defaults = {
        "request_id": request_id(),
        "incident_id": incident_id,
        "gang_id": gang_id,
        "reason": "alibi confirmed",
    }
    return _build(incident_service_pb2.RetractAttributionRequest, defaults, overrides)


def link(
    incident_id: str, related_incident_id: str, /, **overrides: Any
) -> incident_service_pb2.LinkIncidentsRequest:
    """incident_id retaliates for related_incident_id."""
    defaults = {
        "request_id": request_id(),
        "incident_id": incident_id,
        "related_incident_id": related_incident_id,
        "kind": incident_pb2.LINK_KIND_RETALIATION_FOR,
        "note": "same crews",
    }
    return _build(incident_service_pb2.LinkIncidentsRequest, defaults, overrides)


def get_incident(incident_id: str) -> incident_service_pb2.GetIncidentRequest:
    """GetIncidentRequest."""
    return incident_service_pb2.GetIncidentRequest(incident_id=incident_id)


# --- GangService -------------------------------------------------------------------------


def gang(**overrides: Any) -> gang_service_pb2.RegisterGangRequest:
    """A gang with a unique name, one alias and territory in zone Midi."""
    suffix = uuid4().hex[:8]
    defaults = {
        "request_id": request_id(),
        "name": f"Clan {suffix}",
        "aliases": [f"Les Gars {suffix}"],
        "territory_municipality_codes": ["21001", "21013"],
        "territory_description": "selling points around Clemenceau",
    }
    return _build(gang_service_pb2.RegisterGangRequest, defaults, overrides)


def alias(gang_id: str, /, **overrides: Any) -> gang_service_pb2.AddGangAliasRequest:
    """A new alias of a gang."""
    defaults = {"request_id": request_id(), "gang_id": gang_id, "alias": f"Alias {uuid4().hex[:8]}"}
    return _build(gang_service_pb2.AddGangAliasRequest, defaults, overrides)


def get_gang(gang_id: str) -> gang_service_pb2.GetGangRequest:
    """GetGangRequest."""
    return gang_service_pb2.GetGangRequest(gang_id=gang_id)


# --- PoliceCommandService ----------------------------------------------------------------


def unify(**overrides: Any) -> command_service_pb2.UnifyPoliceCommandRequest:
    """Zone Midi under the mayor of Anderlecht for a week."""
    defaults = {
        "request_id": request_id(),
        "police_zone_codes": [MIDI_ZONE],
        "lead_authority": "Mayor of Anderlecht",
        "reason": "wave of shootings",
        "planned_end_at": ts(datetime.now(UTC) + timedelta(days=7)),
    }
    return _build(command_service_pb2.UnifyPoliceCommandRequest, defaults, overrides)


def end_command(
    command_id: str, /, **overrides: Any
) -> command_service_pb2.EndUnifiedCommandRequest:
    """End a unified command."""
    defaults = {"request_id": request_id(), "command_id": command_id, "reason": "calm restored"}
    return _build(command_service_pb2.EndUnifiedCommandRequest, defaults, overrides)


def get_command(command_id: str) -> command_service_pb2.GetUnifiedCommandRequest:
    """GetUnifiedCommandRequest."""
    return command_service_pb2.GetUnifiedCommandRequest(command_id=command_id)


# --- AssetRecoveryService ----------------------------------------------------------------


def cash(cents: int, /, **overrides: Any) -> asset_pb2.AssetItem:
    """A lot of cash worth `cents`."""
    defaults = {
        "kind": asset_pb2.ASSET_KIND_CASH,
        "description": "banknotes",
        "estimated_value_cents": cents,
        "quantity": 1,
    }
    return _build(asset_pb2.AssetItem, defaults, overrides)


def seizure(**overrides: Any) -> asset_service_pb2.RecordAssetSeizureRequest:
    """A seizure of 10 000 EUR in cash and 2 kg of cocaine in a new case."""
    defaults = {
        "request_id": request_id(),
        "occurred_at": ts(ago(days=1)),
        "case_reference": f"BR.21.L1.{uuid4().hex[:10]}",
        "municipality_code": ANDERLECHT,
        "items": [
            cash(1_000_000),
            asset_pb2.AssetItem(
                kind=asset_pb2.ASSET_KIND_DRUGS,
                description="cocaine",
                estimated_value_cents=0,
                quantity=1,
                weight_kg=2.0,
            ),
        ],
        "description": "house search",
    }
    return _build(asset_service_pb2.RecordAssetSeizureRequest, defaults, overrides)


def confiscation(
    case_id: str, amount_cents: int, /, **overrides: Any
) -> asset_service_pb2.ConfiscateAssetsRequest:
    """A court confiscation of `amount_cents`."""
    defaults = {
        "request_id": request_id(),
        "case_id": case_id,
        "amount_cents": amount_cents,
        "court": "Tribunal correctionnel de Bruxelles",
        "decision_reference": f"JUG-{uuid4().hex[:6]}",
    }
    return _build(asset_service_pb2.ConfiscateAssetsRequest, defaults, overrides)


def reinvestment(
    case_id: str, amount_cents: int, /, **overrides: Any
) -> asset_service_pb2.ReinvestAssetsRequest:
    """A reinvestment of `amount_cents` in a social programme."""
    defaults = {
        "request_id": request_id(),
        "case_id": case_id,
        "amount_cents": amount_cents,
        "beneficiary": asset_pb2.Beneficiary(
            kind=asset_pb2.BENEFICIARY_KIND_SOCIAL_PROGRAMME, name="Youth sports Anderlecht"
        ),
        "note": "first tranche",
    }
    return _build(asset_service_pb2.ReinvestAssetsRequest, defaults, overrides)


def release(
    case_id: str, amount_cents: int, /, **overrides: Any
) -> asset_service_pb2.ReleaseAssetsRequest:
    """A court release of `amount_cents`."""
    defaults = {
        "request_id": request_id(),
        "case_id": case_id,
        "amount_cents": amount_cents,
        "court": "Cour d'appel de Bruxelles",
        "decision_reference": f"ARR-{uuid4().hex[:6]}",
        "reason": "lawful origin proven",
    }
    return _build(asset_service_pb2.ReleaseAssetsRequest, defaults, overrides)


def get_case(case_id: str) -> asset_service_pb2.GetAssetCaseRequest:
    """GetAssetCaseRequest."""
    return asset_service_pb2.GetAssetCaseRequest(case_id=case_id)


# --- Rich error details ------------------------------------------------------------------


def error_details(err: grpc.RpcError) -> list[Message]:
    """The google.rpc detail messages of a failed call, unpacked."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return []
    found: list[Message] = []
    for packed in status.details:
        for cls in _DETAIL_TYPES:
            if packed.Is(cls.DESCRIPTOR):
                message = cls()
                packed.Unpack(message)
                found.append(message)
                break
        else:
            found.append(packed)
    return found


def detail(err: grpc.RpcError, cls: type[M]) -> M:
    """The one detail of type `cls` of a failed call."""
    matching = [d for d in error_details(err) if isinstance(d, cls)]
    assert len(matching) == 1, f"expected one {cls.__name__} in {error_details(err)}"
    return matching[0]


def field_violations(err: grpc.RpcError) -> dict[str, str]:
    """The BadRequest field violations of a failed call, field -> description."""
    bad_request = detail(err, error_details_pb2.BadRequest)
    return {v.field: v.description for v in bad_request.field_violations}
