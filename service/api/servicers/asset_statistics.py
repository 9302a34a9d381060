"""AssetStatisticsService: the asset recovery read model."""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from incident_registry_client.proto.incidents.v1 import asset_pb2
from incident_registry_client.proto.incidents.v1 import asset_statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import asset_statistics_service_pb2_grpc as pb_grpc

from projections.assets import NAME
from projections.assets_model import AmountsRow, query_amounts
from projections.runtime import Projections
from service.api.catch_up import wait_until_caught_up
from service.api.enums import ASSET_KIND, BENEFICIARY_KIND
from service.api.fields import FieldReader
from service.api.servicers.statistics import PERIOD_KINDS
from service.app.registry import Registry
from service.areas import AreaCatalog
from service.domain.values import AssetKind, BeneficiaryKind
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

GROUPINGS = {
    pb.ASSET_RECOVERY_GROUPING_PERIOD: "period",
    pb.ASSET_RECOVERY_GROUPING_ASSET_KIND: "asset_kind",
    pb.ASSET_RECOVERY_GROUPING_GANG: "gang",
    pb.ASSET_RECOVERY_GROUPING_BENEFICIARY: "beneficiary",
    pb.ASSET_RECOVERY_GROUPING_MUNICIPALITY: "municipality",
}
PERIOD_FORMS = {
    "day": (re.compile(r"\d{4}-\d{2}-\d{2}"), '"2024-06-01"'),
    "week": (re.compile(r"\d{4}-W\d{2}"), '"2024-W22"'),
    "month": (re.compile(r"\d{4}-\d{2}"), '"2024-06"'),
    "year": (re.compile(r"\d{4}"), '"2024"'),
}


def _row(grouping: str, amounts: AmountsRow) -> pb.AssetRecoveryRow:
    row = pb.AssetRecoveryRow(
        seized_value_cents=amounts.seized_cents,
        confiscated_value_cents=amounts.confiscated_cents,
        reinvested_value_cents=amounts.reinvested_cents,
        released_value_cents=amounts.released_cents,
    )
    key = amounts.key
    if grouping == "period":
        row.period = key[0]
    elif grouping == "asset_kind":
        row.asset_kind = (
            ASSET_KIND.proto(AssetKind(key[0])) if key[0] else asset_pb2.ASSET_KIND_UNSPECIFIED
        )
    elif grouping == "gang":
        row.gang_id = key[0]
    elif grouping == "beneficiary":
        kind = (
            BENEFICIARY_KIND.proto(BeneficiaryKind(key[0]))
            if key[0]
            else asset_pb2.BENEFICIARY_KIND_UNSPECIFIED
        )
        row.beneficiary.CopyFrom(asset_pb2.Beneficiary(kind=kind, name=key[1]))
    else:
        row.municipality_code = key[0]
    return row


def totals(rows: list[pb.AssetRecoveryRow]) -> pb.AssetRecoveryTotals:
    """The sums of the rows and the share of the confiscated value that was reinvested."""
    result = pb.AssetRecoveryTotals(
        seized_value_cents=sum(r.seized_value_cents for r in rows),
        confiscated_value_cents=sum(r.confiscated_value_cents for r in rows),
        reinvested_value_cents=sum(r.reinvested_value_cents for r in rows),
        released_value_cents=sum(r.released_value_cents for r in rows),
    )
    if result.confiscated_value_cents:
        result.reinvested_share = result.reinvested_value_cents / result.confiscated_value_cents
    return result


class AssetStatisticsServicer(pb_grpc.AssetStatisticsServiceServicer):
    """Serves AssetStatisticsService from the asset recovery projection."""

    def __init__(
        self, projections: Projections, backend: EventStoreBackend, catalog: AreaCatalog
    ) -> None:
        self._projections = projections
        self._backend = backend
        self._catalog = catalog

    async def GetAssetRecoveryStatistics(  # noqa: N802 - gRPC method name
        self, request: pb.GetAssetRecoveryStatisticsRequest, context: Context
    ) -> pb.GetAssetRecoveryStatisticsResponse:
        """Return the ledger's amounts by one grouping, once it includes `min_position`."""
        reader = FieldReader()
        grouping = GROUPINGS.get(request.group_by)
        reader.check(
            grouping is not None,
            "group_by",
            "must be PERIOD, ASSET_KIND, GANG, BENEFICIARY or MUNICIPALITY",
        )
        period_kind = self._period_kind(request, grouping, reader)
        reader.municipalities(request.municipality_codes, "municipality_codes", self._catalog)
        gang_ids = [str(g) for g in reader.uuids(request.gang_ids, "gang_ids")]
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        assert grouping is not None
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, found = await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                query_amounts(
                    tx,
                    f"period:{period_kind}" if grouping == "period" else grouping,
                    period_kind=period_kind,
                    from_period=request.from_period,
                    to_period=request.to_period,
                    municipality_codes=list(request.municipality_codes),
                    gang_ids=gang_ids,
                ),
            )
        )
        rows = [_row(grouping, amounts) for amounts in found]
        if grouping == "asset_kind":
            rows.sort(key=lambda r: r.asset_kind)
        return pb.GetAssetRecoveryStatisticsResponse(
            rows=rows, totals=totals(rows), currency=self._catalog.currency, position=position
        )

    @staticmethod
    def _period_kind(
        request: pb.GetAssetRecoveryStatisticsRequest, grouping: str | None, reader: FieldReader
    ) -> str:
        """The period kind, required to group by period or to select a period range."""
        needed = grouping == "period" or bool(request.from_period or request.to_period)
        if request.period_kind == 0 and not needed:
            return ""
        period_kind = PERIOD_KINDS.get(request.period_kind)
        why = "to group by period or select a period range" if needed else "when given"
        if not reader.check(
            period_kind is not None, "period_kind", f"must be DAY, ISO_WEEK, MONTH or YEAR {why}"
        ):
            return ""
        assert period_kind is not None
        form, example = PERIOD_FORMS[period_kind]
        for field in ("from_period", "to_period"):
            value = getattr(request, field)
            reader.check(
                not value or form.fullmatch(value) is not None,
                field,
                f"must be a {period_kind} like {example}",
            )
        if request.from_period and request.to_period:
            reader.check(
                request.from_period <= request.to_period,
                "to_period",
                "must not precede from_period",
            )
        return period_kind


def asset_statistics_service(
    projections: Projections, registry: Registry
) -> tuple[AssetStatisticsServicer, ServiceDescriptor]:
    """The servicer and the descriptor of AssetStatisticsService, for add_read_model_services."""
    servicer = AssetStatisticsServicer(projections, registry.backend, registry.catalog)
    return servicer, pb.DESCRIPTOR.services_by_name["AssetStatisticsService"]
