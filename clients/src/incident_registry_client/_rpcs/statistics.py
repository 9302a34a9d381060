"""StatisticsService and AssetStatisticsService: statistics read models, and watching them."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from incident_registry_client._call import Call, StreamCall, method_path, read_call
from incident_registry_client._convert.enums import (
    AREA_KIND,
    ASSET_RECOVERY_GROUPING,
    PERIOD_KIND,
)
from incident_registry_client._convert.read_models import (
    area_statistics,
    asset_recovery_statistics,
    incident_breakdown,
    statistics_update,
)
from incident_registry_client._convert.values import id_text
from incident_registry_client.proto.incidents.v1 import asset_statistics_service_pb2 as assets_pb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.types.areas import AreaKind, PeriodKind
from incident_registry_client.types.asset_statistics import (
    AssetRecoveryGrouping,
    AssetRecoveryStatistics,
)
from incident_registry_client.types.statistics import (
    AreaStatistics,
    IncidentBreakdown,
    StatisticsUpdate,
)


def _path(method: str) -> str:
    return method_path(pb, "StatisticsService", method)


def get_area_statistics(
    *,
    area_kind: AreaKind,
    period_kind: PeriodKind,
    area_codes: Sequence[str] = (),
    from_period: str = "",
    to_period: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[AreaStatistics]:
    """Return incidents, killed and injured by area and period (periods inclusive, "" open).

    `min_position` (e.g. a write's position) waits until the statistics include it.
    """
    request = pb.GetAreaStatisticsRequest(
        area_kind=AREA_KIND.to_proto(area_kind),
        area_codes=list(area_codes),
        period_kind=PERIOD_KIND.to_proto(period_kind),
        from_period=from_period,
        to_period=to_period,
        min_position=min_position,
    )
    return read_call(
        _path("GetAreaStatistics"), request, pb.GetAreaStatisticsResponse, area_statistics, timeout
    )


def get_incident_breakdown(
    *,
    area_kind: AreaKind | None = None,
    area_codes: Sequence[str] = (),
    period_kind: PeriodKind | None = None,
    from_period: str = "",
    to_period: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[IncidentBreakdown]:
    """Return totals, hour x weekday, weapon kinds, attribution shares and gangs of a selection.

    `area_kind` is needed with `area_codes`; without `period_kind` the selection is all time.
    """
    request = pb.GetIncidentBreakdownRequest(
        area_kind=AREA_KIND.optional_to_proto(area_kind),
        area_codes=list(area_codes),
        period_kind=PERIOD_KIND.optional_to_proto(period_kind),
        from_period=from_period,
        to_period=to_period,
        min_position=min_position,
    )
    return read_call(
        _path("GetIncidentBreakdown"),
        request,
        pb.GetIncidentBreakdownResponse,
        incident_breakdown,
        timeout,
    )


class WatchState:
    """Where a watch reconnects: its snapshot then includes the last position it showed."""

    def __init__(self, request: pb.WatchStatisticsRequest) -> None:
        self._request = request
        self.position: int | None = None

    def request(self) -> pb.WatchStatisticsRequest:
        """The first request, or one whose snapshot includes the last position received."""
        if self.position is None:
            return self._request
        resumed = pb.WatchStatisticsRequest()
        resumed.CopyFrom(self._request)
        resumed.min_position = max(self._request.min_position, self.position)
        return resumed

    def accept(
        self, message: pb.WatchStatisticsResponse
    ) -> Sequence[tuple[StatisticsUpdate, int | None]]:
        """The update a message stands for; moves the position."""
        update = statistics_update(message)
        self.position = update.position
        return [(update, update.position)]


def watch_statistics(
    *,
    area_kind: AreaKind,
    period_kind: PeriodKind,
    area_codes: Sequence[str] = (),
    from_period: str = "",
    to_period: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> StreamCall[StatisticsUpdate]:
    """Watch area statistics: a snapshot of the selection, then each change as it is applied.

    After a dropped connection (e.g. a server restart) the watch reconnects and yields a new
    snapshot (`snapshot=True`) that replaces everything shown before. `timeout` bounds the
    whole watch (None: no deadline).
    """
    request = pb.WatchStatisticsRequest(
        area_kind=AREA_KIND.to_proto(area_kind),
        area_codes=list(area_codes),
        period_kind=PERIOD_KIND.to_proto(period_kind),
        from_period=from_period,
        to_period=to_period,
        min_position=min_position,
    )
    return StreamCall(
        _path("WatchStatistics"),
        pb.WatchStatisticsResponse.FromString,
        WatchState(request),
        timeout,
    )


def get_asset_recovery_statistics(
    *,
    group_by: AssetRecoveryGrouping,
    period_kind: PeriodKind | None = None,
    from_period: str = "",
    to_period: str = "",
    municipality_codes: Sequence[str] = (),
    gang_ids: Sequence[UUID] = (),
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[AssetRecoveryStatistics]:
    """Return values seized, confiscated, reinvested and released, grouped one way, in cents.

    `period_kind` is needed to group by period and to select `from_period`..`to_period`.
    """
    request = assets_pb.GetAssetRecoveryStatisticsRequest(
        group_by=ASSET_RECOVERY_GROUPING.to_proto(group_by),
        period_kind=PERIOD_KIND.optional_to_proto(period_kind),
        from_period=from_period,
        to_period=to_period,
        municipality_codes=list(municipality_codes),
        gang_ids=[id_text(g) for g in gang_ids],
        min_position=min_position,
    )
    return read_call(
        method_path(assets_pb, "AssetStatisticsService", "GetAssetRecoveryStatistics"),
        request,
        assets_pb.GetAssetRecoveryStatisticsResponse,
        asset_recovery_statistics,
        timeout,
    )
