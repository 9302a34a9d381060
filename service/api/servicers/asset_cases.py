"""AssetRecoveryService."""

from __future__ import annotations

from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import asset_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import asset_service_pb2_grpc as pb_grpc

from service.api import requests as rq
from service.api import resources
from service.api.servicers.common import execute_write, history, read_id
from service.app.asset_cases import AssetCases

Context = grpc.aio.ServicerContext[Any, Any]


class AssetRecoveryServicer(pb_grpc.AssetRecoveryServiceServicer):
    """Serves AssetRecoveryService from the AssetCases application service."""

    def __init__(self, cases: AssetCases, currency: str) -> None:
        self._cases = cases
        self._currency = currency

    async def RecordAssetSeizure(  # noqa: N802 - gRPC method name
        self, request: pb.RecordAssetSeizureRequest, context: Context
    ) -> pb.RecordAssetSeizureResponse:
        """Record a seizure."""
        result = await execute_write(
            request, context, rq.record_asset_seizure, self._cases.record_seizure
        )
        return pb.RecordAssetSeizureResponse(result=result)

    async def ConfiscateAssets(  # noqa: N802
        self, request: pb.ConfiscateAssetsRequest, context: Context
    ) -> pb.ConfiscateAssetsResponse:
        """Record a confiscation."""
        result = await execute_write(request, context, rq.confiscate_assets, self._cases.confiscate)
        return pb.ConfiscateAssetsResponse(result=result)

    async def ReinvestAssets(  # noqa: N802
        self, request: pb.ReinvestAssetsRequest, context: Context
    ) -> pb.ReinvestAssetsResponse:
        """Record a reinvestment."""
        result = await execute_write(request, context, rq.reinvest_assets, self._cases.reinvest)
        return pb.ReinvestAssetsResponse(result=result)

    async def ReleaseAssets(  # noqa: N802
        self, request: pb.ReleaseAssetsRequest, context: Context
    ) -> pb.ReleaseAssetsResponse:
        """Record a release."""
        result = await execute_write(request, context, rq.release_assets, self._cases.release)
        return pb.ReleaseAssetsResponse(result=result)

    async def GetAssetCase(  # noqa: N802
        self, request: pb.GetAssetCaseRequest, context: Context
    ) -> pb.GetAssetCaseResponse:
        """Return an asset case and its history."""
        case, events = await self._cases.get(read_id(request.case_id, "case_id"))
        return pb.GetAssetCaseResponse(
            asset_case=resources.asset_case(case, self._currency), history=history(events)
        )
