"""Read models: statistics, breakdowns, listings, asset recovery and projections."""

from __future__ import annotations

from incident_registry_client._convert.enums import (
    AREA_KIND,
    ASSET_KIND,
    ATTRIBUTION_STATUS,
    BENEFICIARY_KIND,
    CONFIDENCE_BAND,
    INCIDENT_ATTRIBUTION_STATUS,
    PERIOD_KIND,
    PROJECTION_STATE,
    WEAPON_KIND,
)
from incident_registry_client._convert.incidents import weapons
from incident_registry_client._convert.resources import beneficiary
from incident_registry_client._convert.values import (
    duration,
    optional_uuid,
    time_field,
    uuid,
    uuids,
)
from incident_registry_client.proto.incidents.v1 import (
    asset_statistics_service_pb2,
    incident_query_service_pb2,
    projection_admin_service_pb2,
    statistics_service_pb2,
    wave_service_pb2,
)
from incident_registry_client.types.asset_statistics import (
    AssetRecoveryRow,
    AssetRecoveryStatistics,
    AssetRecoveryTotals,
)
from incident_registry_client.types.projections import ProjectionInfo
from incident_registry_client.types.queries import (
    AttributionSummary,
    IncidentSummary,
    ViolenceWave,
)
from incident_registry_client.types.statistics import (
    AreaPeriodStatistics,
    AreaStatistics,
    AttributionStatusShare,
    ConfidenceBandShare,
    GangBreakdown,
    HourWeekdayCell,
    IncidentBreakdown,
    StatisticsTotals,
    StatisticsUpdate,
    WeaponKindBreakdown,
)


def _row(m: statistics_service_pb2.AreaPeriodStatistics) -> AreaPeriodStatistics:
    return AreaPeriodStatistics(
        area_kind=AREA_KIND.from_proto(m.area_kind),
        area_code=m.area_code,
        period_kind=PERIOD_KIND.from_proto(m.period_kind),
        period=m.period,
        incidents=m.incidents,
        killed=m.killed,
        injured=m.injured,
    )


def area_statistics(message: statistics_service_pb2.GetAreaStatisticsResponse) -> AreaStatistics:
    """A GetAreaStatistics response as a dataclass."""
    return AreaStatistics(rows=tuple(_row(r) for r in message.rows), position=message.position)


def statistics_update(message: statistics_service_pb2.WatchStatisticsResponse) -> StatisticsUpdate:
    """A WatchStatistics message as a dataclass."""
    totals = message.totals
    return StatisticsUpdate(
        snapshot=message.snapshot,
        rows=tuple(_row(r) for r in message.rows),
        totals=StatisticsTotals(totals.incidents, totals.killed, totals.injured),
        position=message.position,
    )


def incident_breakdown(
    message: statistics_service_pb2.GetIncidentBreakdownResponse,
) -> IncidentBreakdown:
    """A GetIncidentBreakdown response as a dataclass."""
    m = message
    return IncidentBreakdown(
        totals=StatisticsTotals(m.totals.incidents, m.totals.killed, m.totals.injured),
        hour_weekday=tuple(HourWeekdayCell(c.weekday, c.hour, c.incidents) for c in m.hour_weekday),
        weapon_kinds=tuple(
            WeaponKindBreakdown(WEAPON_KIND.from_proto(w.kind), w.incidents, w.weapons)
            for w in m.weapon_kinds
        ),
        attribution_statuses=tuple(
            AttributionStatusShare(
                INCIDENT_ATTRIBUTION_STATUS.from_proto(s.status), s.incidents, s.share
            )
            for s in m.attribution_statuses
        ),
        confidence_bands=tuple(
            ConfidenceBandShare(CONFIDENCE_BAND.from_proto(b.band), b.incidents, b.share)
            for b in m.confidence_bands
        ),
        gangs=tuple(
            GangBreakdown(
                gang_id=uuid(g.gang_id),
                incidents=g.incidents,
                killed=g.killed,
                injured=g.injured,
                suspected_incidents=g.suspected_incidents,
                confirmed_incidents=g.confirmed_incidents,
            )
            for g in m.gangs
        ),
        position=m.position,
    )


def incident_summary(message: incident_query_service_pb2.IncidentSummary) -> IncidentSummary:
    """An IncidentSummary message as a dataclass."""
    m = message
    return IncidentSummary(
        incident_id=uuid(m.incident_id),
        version=m.version,
        position=m.position,
        occurred_at=time_field(m, "occurred_at"),
        reported_at=time_field(m, "reported_at"),
        municipality_code=m.municipality_code,
        police_zone_code=m.police_zone_code,
        local_day=m.local_day,
        local_week=m.local_week,
        local_month=m.local_month,
        local_year=m.local_year,
        local_hour=m.local_hour,
        local_weekday=m.local_weekday,
        killed=m.killed,
        injured=m.injured,
        weapons=weapons(m.weapons),
        address=m.address,
        description=m.description,
        drug_nexus=m.drug_nexus,
        attribution_status=INCIDENT_ATTRIBUTION_STATUS.from_proto(m.attribution_status),
        attributions=tuple(
            AttributionSummary(
                gang_id=uuid(a.gang_id),
                confidence=a.confidence,
                status=ATTRIBUTION_STATUS.from_proto(a.status),
                confidence_band=CONFIDENCE_BAND.from_proto(a.confidence_band),
                attributed_at=time_field(a, "attributed_at"),
            )
            for a in m.attributions
        ),
        link_count=m.link_count,
    )


def violence_wave(message: wave_service_pb2.ViolenceWave) -> ViolenceWave:
    """A ViolenceWave message as a dataclass."""
    m = message
    return ViolenceWave(
        wave_id=uuid(m.wave_id),
        area_kind=AREA_KIND.from_proto(m.area_kind),
        area_code=m.area_code,
        first_occurred_at=time_field(m, "first_occurred_at"),
        last_occurred_at=time_field(m, "last_occurred_at"),
        incident_ids=uuids(m.incident_ids),
        detected_incident_ids=uuids(m.detected_incident_ids),
        min_shootings=m.min_shootings,
        window_hours=m.window_hours,
        trigger_position=m.trigger_position,
        detected_position=m.detected_position,
    )


def asset_recovery_statistics(
    message: asset_statistics_service_pb2.GetAssetRecoveryStatisticsResponse,
) -> AssetRecoveryStatistics:
    """A GetAssetRecoveryStatistics response as a dataclass."""
    t = message.totals
    return AssetRecoveryStatistics(
        rows=tuple(
            AssetRecoveryRow(
                period=r.period,
                asset_kind=ASSET_KIND.optional_from_proto(r.asset_kind),
                gang_id=optional_uuid(r.gang_id),
                beneficiary=(
                    beneficiary(r.beneficiary)
                    if BENEFICIARY_KIND.optional_from_proto(r.beneficiary.kind) is not None
                    else None
                ),
                municipality_code=r.municipality_code,
                seized_value_cents=r.seized_value_cents,
                confiscated_value_cents=r.confiscated_value_cents,
                reinvested_value_cents=r.reinvested_value_cents,
                released_value_cents=r.released_value_cents,
            )
            for r in message.rows
        ),
        totals=AssetRecoveryTotals(
            seized_value_cents=t.seized_value_cents,
            confiscated_value_cents=t.confiscated_value_cents,
            reinvested_value_cents=t.reinvested_value_cents,
            released_value_cents=t.released_value_cents,
            reinvested_share=t.reinvested_share,
        ),
        currency=message.currency,
        position=message.position,
    )


def projection_info(message: projection_admin_service_pb2.ProjectionInfo) -> ProjectionInfo:
    """A ProjectionInfo message as a dataclass."""
    m = message
    return ProjectionInfo(
        name=m.name,
        description=m.description,
        state=PROJECTION_STATE.from_proto(m.state),
        error=m.error,
        position=m.position,
        start_position=m.start_position,
        head=m.head,
        lag_events=m.lag_events,
        lag=duration(m.lag),
        applied_here=m.applied_here,
        updated_at=time_field(m, "updated_at"),
    )
