"""AssetRecoveryService: seizures, confiscations, reinvestments and releases.

Amounts are integers in minor units of the catalog's currency (euro cents by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from incident_registry_client._call import Call, method_path, new_request_id, read_call, write_call
from incident_registry_client._convert.events import events
from incident_registry_client._convert.incidents import write_result
from incident_registry_client._convert.resources import (
    asset_case,
    asset_item_messages,
    beneficiary_message,
)
from incident_registry_client._convert.values import id_text, optional_timestamp, timestamp
from incident_registry_client.proto.incidents.v1 import asset_service_pb2 as pb
from incident_registry_client.types.assets import AssetCase, AssetItem, Beneficiary
from incident_registry_client.types.common import Aggregate, WriteResult


def _path(method: str) -> str:
    return method_path(pb, "AssetRecoveryService", method)


def record_asset_seizure(
    *,
    occurred_at: datetime,
    case_reference: str,
    items: Sequence[AssetItem],
    municipality_code: str = "",
    gang_id: UUID | None = None,
    incident_ids: Sequence[UUID] = (),
    description: str = "",
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record a seizure; the first one under a case reference opens the case (`aggregate_id`)."""
    request = pb.RecordAssetSeizureRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=timestamp(occurred_at),
        case_reference=case_reference,
        municipality_code=municipality_code,
        gang_id=id_text(gang_id) if gang_id is not None else "",
        incident_ids=[id_text(i) for i in incident_ids],
        items=asset_item_messages(items),
        description=description,
    )
    return write_call(
        _path("RecordAssetSeizure"),
        request,
        pb.RecordAssetSeizureResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def confiscate_assets(
    *,
    case_id: UUID,
    amount_cents: int,
    court: str,
    decision_reference: str,
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record a court decision confiscating part of the value seized in a case."""
    request = pb.ConfiscateAssetsRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        case_id=id_text(case_id),
        amount_cents=amount_cents,
        court=court,
        decision_reference=decision_reference,
    )
    return write_call(
        _path("ConfiscateAssets"),
        request,
        pb.ConfiscateAssetsResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def reinvest_assets(
    *,
    case_id: UUID,
    amount_cents: int,
    beneficiary: Beneficiary,
    note: str = "",
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record the reinvestment of confiscated value in law enforcement or a social programme."""
    request = pb.ReinvestAssetsRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        case_id=id_text(case_id),
        amount_cents=amount_cents,
        beneficiary=beneficiary_message(beneficiary),
        note=note,
    )
    return write_call(
        _path("ReinvestAssets"),
        request,
        pb.ReinvestAssetsResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def release_assets(
    *,
    case_id: UUID,
    amount_cents: int,
    court: str,
    decision_reference: str,
    reason: str = "",
    occurred_at: datetime | None = None,
    request_id: str | None = None,
    expected_version: int | None = None,
    timeout: float | None = None,
) -> Call[WriteResult]:
    """Record a court decision returning confiscated value."""
    request = pb.ReleaseAssetsRequest(
        request_id=new_request_id(request_id),
        expected_version=expected_version,
        occurred_at=optional_timestamp(occurred_at),
        case_id=id_text(case_id),
        amount_cents=amount_cents,
        court=court,
        decision_reference=decision_reference,
        reason=reason,
    )
    return write_call(
        _path("ReleaseAssets"),
        request,
        pb.ReleaseAssetsResponse,
        lambda r: write_result(r.result),
        timeout,
    )


def get_asset_case(*, case_id: UUID, timeout: float | None = None) -> Call[Aggregate[AssetCase]]:
    """Return an asset case's current state (amounts in its `currency`) and its history."""
    return read_call(
        _path("GetAssetCase"),
        pb.GetAssetCaseRequest(case_id=id_text(case_id)),
        pb.GetAssetCaseResponse,
        lambda r: Aggregate(asset_case(r.asset_case), events(r.history)),
        timeout,
    )
