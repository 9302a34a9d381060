"""StatisticsService.GetIncidentBreakdown over a real channel, on SQLite and on PostgreSQL.

The breakdown of a selection (areas, local periods) counts totals, hour by weekday, weapons,
attribution shares and gangs; corrections move every count; and it always equals what the
listing of the same incidents adds up to.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import incident_pb2
from incident_registry_client.proto.incidents.v1 import incident_query_service_pb2 as qpb
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.incident_query_service_pb2_grpc import (
    IncidentQueryServiceStub,
)
from incident_registry_client.proto.incidents.v1.statistics_service_pb2_grpc import (
    StatisticsServiceStub,
)

from service.areas import load_catalog
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.stores import BOTH_STORES

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST, MIDI = "21001", "21007", "5341"
BRUXELLES, CAPITALE = "21004", "5339"
ETTERBEEK = "21005"
REPORTED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
WAIT = 10.0

MUNICIPALITY, POLICE_ZONE = pb.AREA_KIND_MUNICIPALITY, pb.AREA_KIND_POLICE_ZONE
DAY, WEEK, MONTH, YEAR = (
    pb.PERIOD_KIND_DAY,
    pb.PERIOD_KIND_ISO_WEEK,
    pb.PERIOD_KIND_MONTH,
    pb.PERIOD_KIND_YEAR,
)
HANDGUN = incident_pb2.WEAPON_KIND_HANDGUN
RIFLE = incident_pb2.WEAPON_KIND_ASSAULT_RIFLE
SHOTGUN = incident_pb2.WEAPON_KIND_SHOTGUN
OTHER = incident_pb2.WEAPON_KIND_OTHER
UNKNOWN = incident_pb2.WEAPON_KIND_UNKNOWN
SUSPECTED = incident_pb2.ATTRIBUTION_STATUS_SUSPECTED
CONFIRMED = incident_pb2.ATTRIBUTION_STATUS_CONFIRMED
STATUS_ORDER = [
    qpb.INCIDENT_ATTRIBUTION_STATUS_UNATTRIBUTED,
    qpb.INCIDENT_ATTRIBUTION_STATUS_SUSPECTED,
    qpb.INCIDENT_ATTRIBUTION_STATUS_CONFIRMED,
]
BAND_ORDER = [qpb.CONFIDENCE_BAND_LOW, qpb.CONFIDENCE_BAND_MEDIUM, qpb.CONFIDENCE_BAND_HIGH]


@pytest.fixture
def statistics(channel):
    return StatisticsServiceStub(channel)


@pytest.fixture
def queries(channel):
    return IncidentQueryServiceStub(channel)


def weapons(*pairs):
    return [incident_pb2.Weapon(kind=kind, count=count) for kind, count in pairs]


def report(incidents, municipality, when, killed, injured, arms):
    reply = incidents.ReportShooting(
        b.shooting(
            municipality_code=municipality,
            occurred_at=b.ts(when),
            reported_at=b.ts(REPORTED),
            location=None,
            killed=killed,
            injured=injured,
            weapons=arms,
        ),
        metadata=ACTOR_METADATA,
    )
    return reply.result.aggregate_id, reply.result.position


def attribute(incidents, incident_id, gang_id, confidence, status):
    request = b.attribution(incident_id, gang_id, confidence=confidence, status=status)
    return incidents.AttributeToGang(request, metadata=ACTOR_METADATA).result.position


def register_gang(gangs):
    return gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.aggregate_id


def breakdown(statistics, min_position=0, **selection):
    return statistics.GetIncidentBreakdown(
        pb.GetIncidentBreakdownRequest(min_position=min_position, **selection), timeout=WAIT
    )


def totals(reply):
    return (reply.totals.incidents, reply.totals.killed, reply.totals.injured)


def cells(reply):
    """The matrix cells with incidents: (weekday, hour) -> incidents."""
    return {(c.weekday, c.hour): c.incidents for c in reply.hour_weekday if c.incidents}


def arms(reply):
    return {w.kind: (w.incidents, w.weapons) for w in reply.weapon_kinds if w.incidents}


def statuses(reply):
    return [(s.status, s.incidents, s.share) for s in reply.attribution_statuses]


def bands(reply):
    return [(s.band, s.incidents, s.share) for s in reply.confidence_bands]


def gang_rows(reply):
    return [
        (g.gang_id, g.incidents, g.killed, g.injured, g.suspected_incidents, g.confirmed_incidents)
        for g in reply.gangs
    ]


def seed(incidents, gangs):
    """Five incidents in local hours and weekdays of Brussels; two gangs."""
    p1, _ = report(
        incidents,
        ANDERLECHT,
        datetime(2024, 5, 31, 8, 0, tzinfo=UTC),  # Friday 10:00
        1,
        0,
        weapons((RIFLE, 2), (HANDGUN, 1)),
    )
    p2, _ = report(
        incidents,
        FOREST,
        datetime(2024, 5, 31, 8, 30, tzinfo=UTC),  # Friday 10:30
        0,
        2,
        weapons((HANDGUN, 1)),
    )
    p3, _ = report(
        incidents,
        BRUXELLES,
        datetime(2024, 6, 2, 22, 30, tzinfo=UTC),  # Monday 3 June 00:30
        0,
        1,
        weapons((SHOTGUN, 1)),
    )
    p4, _ = report(
        incidents,
        BRUXELLES,
        datetime(2023, 12, 31, 23, 30, tzinfo=UTC),  # Monday 1 January 2024, 00:30
        2,
        0,
        weapons((UNKNOWN, 1)),
    )
    p5, _ = report(
        incidents,
        ETTERBEEK,
        datetime(2024, 6, 15, 10, 0, tzinfo=UTC),  # Saturday 12:00
        0,
        0,
        weapons((HANDGUN, 2)),
    )
    g1, g2 = sorted([register_gang(gangs), register_gang(gangs)])
    attribute(incidents, p1, g1, 0.9, CONFIRMED)
    attribute(incidents, p2, g1, 0.6, SUSPECTED)
    attribute(incidents, p2, g2, 0.3, SUSPECTED)
    last = attribute(incidents, p4, g2, 0.45, SUSPECTED)
    return (p1, p2, p3, p4, p5), (g1, g2), last


@BOTH_STORES
def test_the_breakdown_of_all_incidents(incidents, gangs, statistics):
    _, (g1, g2), last = seed(incidents, gangs)
    reply = breakdown(statistics, last)
    assert reply.position >= last
    assert totals(reply) == (5, 3, 3)

    # Every cell, weekday by weekday, hour by hour; the incidents in local time.
    assert [(c.weekday, c.hour) for c in reply.hour_weekday] == [
        (day, hour) for day in range(1, 8) for hour in range(24)
    ]
    assert cells(reply) == {(5, 10): 2, (1, 0): 2, (6, 12): 1}

    assert [w.kind for w in reply.weapon_kinds] == [HANDGUN, RIFLE, SHOTGUN, OTHER, UNKNOWN]
    assert arms(reply) == {HANDGUN: (3, 4), RIFLE: (1, 2), SHOTGUN: (1, 1), UNKNOWN: (1, 1)}

    assert statuses(reply) == [
        (STATUS_ORDER[0], 2, 0.4),
        (STATUS_ORDER[1], 2, 0.4),
        (STATUS_ORDER[2], 1, 0.2),
    ]
    # The strongest attribution: p1 0.9 (high), p2 0.6 (medium, not its 0.3), p4 0.45 (low).
    assert bands(reply) == [(band, 1, 0.2) for band in BAND_ORDER]

    assert gang_rows(reply) == [(g1, 2, 1, 2, 1, 1), (g2, 2, 2, 2, 2, 0)]


@BOTH_STORES
def test_areas_and_local_periods_select_incidents(incidents, gangs, statistics):
    _, (g1, g2), last = seed(incidents, gangs)

    def select(**selection):
        return breakdown(statistics, last, **selection)

    bruxelles = select(area_kind=MUNICIPALITY, area_codes=[BRUXELLES])
    assert totals(bruxelles) == (2, 2, 1)
    assert cells(bruxelles) == {(1, 0): 2}
    assert gang_rows(bruxelles) == [(g2, 1, 2, 0, 1, 0)]
    assert statuses(bruxelles)[0] == (STATUS_ORDER[0], 1, 0.5)

    midi = select(area_kind=POLICE_ZONE, area_codes=[MIDI])
    assert totals(midi) == (2, 1, 2)
    assert arms(midi) == {HANDGUN: (2, 2), RIFLE: (1, 2)}
    assert gang_rows(midi) == [(g1, 2, 1, 2, 1, 1), (g2, 1, 0, 2, 1, 0)]
    assert totals(select(area_kind=POLICE_ZONE, area_codes=[MIDI, CAPITALE])) == (4, 3, 3)
    assert totals(select(area_kind=MUNICIPALITY, area_codes=["99999"])) == (0, 0, 0)

    # Local periods: p4 occurred in 2023 in UTC but on 1 January 2024 in Brussels.
    assert totals(select(period_kind=YEAR, from_period="2023", to_period="2023")) == (0, 0, 0)
    assert totals(select(period_kind=YEAR, from_period="2024")) == (5, 3, 3)
    assert totals(select(period_kind=MONTH, from_period="2024-05", to_period="2024-05")) == (
        2,
        1,
        2,
    )
    assert totals(select(period_kind=MONTH, from_period="2024-06")) == (2, 0, 1)
    assert totals(select(period_kind=WEEK, from_period="2024-W22", to_period="2024-W22")) == (
        2,
        1,
        2,
    )
    assert totals(select(period_kind=WEEK, to_period="2024-W01")) == (1, 2, 0)
    assert totals(select(period_kind=DAY, from_period="2024-06-03", to_period="2024-06-03")) == (
        1,
        0,
        1,
    )
    # Areas and periods together.
    both = select(
        area_kind=POLICE_ZONE, area_codes=[CAPITALE], period_kind=DAY, from_period="2024-06-01"
    )
    assert (totals(both), cells(both), arms(both)) == ((1, 0, 1), {(1, 0): 1}, {SHOTGUN: (1, 1)})
    assert gang_rows(both) == []
    assert bands(both) == [(band, 0, 0.0) for band in BAND_ORDER]


@BOTH_STORES
def test_corrections_move_every_count(incidents, gangs, statistics):
    g1, g2 = sorted([register_gang(gangs), register_gang(gangs)])
    incident_id, _ = report(
        incidents,
        ANDERLECHT,
        datetime(2024, 5, 31, 8, 0, tzinfo=UTC),  # Friday 10:00 in Brussels
        0,
        2,
        weapons((RIFLE, 1)),
    )
    attribute(incidents, incident_id, g1, 0.6, SUSPECTED)
    attribute(incidents, incident_id, g2, 0.3, SUSPECTED)
    incidents.ReviseCasualties(
        b.casualties(incident_id, killed=1, injured=1), metadata=ACTOR_METADATA
    )
    correction = incident_pb2.IncidentCorrection(
        municipality_code=BRUXELLES,
        occurred_at=b.ts(datetime(2024, 6, 3, 15, 0, tzinfo=UTC)),  # Monday 17:00
        weapons=weapons((HANDGUN, 2), (SHOTGUN, 1)),
    )
    for path in ("municipality_code", "occurred_at", "weapons"):
        incidents.AmendIncident(
            b.amendment(incident_id, path, correction=correction), metadata=ACTOR_METADATA
        )
    attribute(incidents, incident_id, g1, 0.85, CONFIRMED)
    last = incidents.RetractAttribution(
        b.retraction(incident_id, g2), metadata=ACTOR_METADATA
    ).result.position

    reply = breakdown(statistics, last)
    assert totals(reply) == (1, 1, 1)
    assert cells(reply) == {(1, 17): 1}
    assert arms(reply) == {HANDGUN: (1, 2), SHOTGUN: (1, 1)}
    assert statuses(reply) == [
        (STATUS_ORDER[0], 0, 0.0),
        (STATUS_ORDER[1], 0, 0.0),
        (STATUS_ORDER[2], 1, 1.0),
    ]
    assert bands(reply) == [
        (BAND_ORDER[0], 0, 0.0),
        (BAND_ORDER[1], 0, 0.0),
        (BAND_ORDER[2], 1, 1.0),
    ]
    assert gang_rows(reply) == [(g1, 1, 1, 1, 0, 1)]
    assert totals(breakdown(statistics, last, area_kind=POLICE_ZONE, area_codes=[MIDI])) == (
        0,
        0,
        0,
    )
    moved = breakdown(statistics, last, period_kind=WEEK, from_period="2024-W23")
    assert totals(moved) == (1, 1, 1)

    # The last attribution retracted: unattributed, in no band, no gang.
    last = incidents.RetractAttribution(
        b.retraction(incident_id, g1), metadata=ACTOR_METADATA
    ).result.position
    reply = breakdown(statistics, last)
    assert statuses(reply)[0] == (STATUS_ORDER[0], 1, 1.0)
    assert [count for _, count, _ in bands(reply)] == [0, 0, 0]
    assert gang_rows(reply) == []


def listed(queries, position):
    """Every incident of the listing."""
    found, token = [], ""
    while True:
        reply = queries.ListIncidents(
            qpb.ListIncidentsRequest(min_position=position, page_token=token, page_size=500),
            timeout=WAIT,
        )
        found.extend(reply.incidents)
        token = reply.next_page_token
        if not token:
            return found


def added_up(incidents_listed):
    """The breakdown of listed incidents, computed here from their summaries."""
    matrix, kinds, weapon_counts = Counter(), Counter(), Counter()
    status_counts, band_counts, gang_counts = Counter(), Counter(), {}
    for s in incidents_listed:
        matrix[(s.local_weekday, s.local_hour)] += 1
        for w in s.weapons:
            kinds[w.kind] += 1
            weapon_counts[w.kind] += w.count
        status_counts[s.attribution_status] += 1
        if s.attributions:
            strongest = max(s.attributions, key=lambda a: a.confidence)
            band_counts[strongest.confidence_band] += 1
        for a in s.attributions:
            row = gang_counts.setdefault(a.gang_id, [0, 0, 0, 0, 0])
            row[0] += 1
            row[1] += s.killed
            row[2] += s.injured
            row[3 if a.status == SUSPECTED else 4] += 1
    total = len(incidents_listed)
    return {
        "totals": (
            total,
            sum(s.killed for s in incidents_listed),
            sum(s.injured for s in incidents_listed),
        ),
        "cells": dict(matrix),
        "arms": {kind: (kinds[kind], weapon_counts[kind]) for kind in kinds},
        "statuses": [(st, status_counts[st], status_counts[st] / total) for st in STATUS_ORDER],
        "bands": [(band, band_counts[band], band_counts[band] / total) for band in BAND_ORDER],
        "gangs": sorted(
            ((gang, *row) for gang, row in gang_counts.items()), key=lambda r: (-r[1], r[0])
        ),
    }


def as_dict(reply):
    return {
        "totals": totals(reply),
        "cells": cells(reply),
        "arms": arms(reply),
        "statuses": statuses(reply),
        "bands": bands(reply),
        "gangs": gang_rows(reply),
    }


@BOTH_STORES
def test_the_breakdown_equals_what_the_listing_adds_up_to(incidents, gangs, statistics, queries):
    codes = sorted(BRUSSELS.municipalities)
    gang_ids = [register_gang(gangs) for _ in range(4)]
    created = []
    kinds = [HANDGUN, RIFLE, SHOTGUN, OTHER, UNKNOWN]
    for n in range(24):
        when = datetime(2023, 12, 28, 21, 10, tzinfo=UTC) + timedelta(days=n * 3, hours=n * 5)
        arms_used = weapons((kinds[n % 5], 1 + n % 3), (kinds[(n + 2) % 5], 1))
        incident_id, _ = report(incidents, codes[n % 11], when, n % 3, (n * 7) % 5, arms_used)
        created.append(incident_id)
    for n, incident_id in enumerate(created[1::2]):
        status = CONFIRMED if n % 4 == 0 else SUSPECTED
        attribute(incidents, incident_id, gang_ids[n % 4], (0.2, 0.5, 0.79, 0.8)[n % 4], status)
        if n % 3 == 0:
            attribute(incidents, incident_id, gang_ids[(n + 1) % 4], 0.65, SUSPECTED)
    incidents.RetractAttribution(b.retraction(created[1], gang_ids[0]), metadata=ACTOR_METADATA)
    incidents.ReviseCasualties(
        b.casualties(created[4], killed=3, injured=0), metadata=ACTOR_METADATA
    )
    last = incidents.AmendIncident(
        b.amendment(
            created[6],
            "municipality_code",
            "occurred_at",
            correction=incident_pb2.IncidentCorrection(
                municipality_code=BRUXELLES,
                occurred_at=b.ts(datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),
            ),
        ),
        metadata=ACTOR_METADATA,
    ).result.position

    everything = listed(queries, last)
    assert len(everything) == len(created)
    selections = [
        ({}, lambda s: True),
        (
            {"area_kind": POLICE_ZONE, "area_codes": [MIDI, CAPITALE]},
            lambda s: s.police_zone_code in (MIDI, CAPITALE),
        ),
        (
            {"area_kind": MUNICIPALITY, "area_codes": codes[:4]},
            lambda s: s.municipality_code in codes[:4],
        ),
        (
            {"period_kind": MONTH, "from_period": "2024-01", "to_period": "2024-03"},
            lambda s: "2024-01" <= s.local_month <= "2024-03",
        ),
        (
            {"period_kind": WEEK, "from_period": "2024-W10"},
            lambda s: s.local_week >= "2024-W10",
        ),
        (
            {
                "area_kind": POLICE_ZONE,
                "area_codes": [CAPITALE],
                "period_kind": YEAR,
                "to_period": "2024",
            },
            lambda s: s.police_zone_code == CAPITALE and s.local_year <= "2024",
        ),
    ]
    for selection, keep in selections:
        chosen = [s for s in everything if keep(s)]
        assert chosen, selection
        assert as_dict(breakdown(statistics, last, **selection)) == added_up(chosen), selection


# --- Rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "fields"),
    [
        ({"area_codes": [BRUXELLES]}, {"area_kind"}),
        ({"area_kind": 99}, {"area_kind"}),
        ({"period_kind": 42}, {"period_kind"}),
        ({"from_period": "2024"}, {"period_kind"}),
        ({"period_kind": MONTH, "from_period": "2024-6"}, {"from_period"}),
        ({"period_kind": WEEK, "to_period": "2024-06"}, {"to_period"}),
        (
            {"period_kind": DAY, "from_period": "2024-06-02", "to_period": "2024-06-01"},
            {"to_period"},
        ),
        ({"min_position": -1}, {"min_position"}),
        (
            {"area_codes": ["x"], "period_kind": YEAR, "from_period": "24", "min_position": -5},
            {"area_kind", "from_period", "min_position"},
        ),
    ],
)
def test_invalid_selections_name_every_invalid_field(statistics, selection, fields):
    with pytest.raises(grpc.RpcError) as failure:
        breakdown(statistics, **selection)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == fields


def test_an_empty_model_breaks_down_to_zeros_and_a_position_beyond_the_head_is_out_of_range(
    incidents, statistics
):
    reply = breakdown(statistics)
    assert (totals(reply), reply.position, len(reply.hour_weekday)) == ((0, 0, 0), 0, 168)
    assert [share for _, _, share in statuses(reply)] == [0.0, 0.0, 0.0]
    with pytest.raises(grpc.RpcError) as failure:
        breakdown(statistics, 1)
    assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE

    _, position = report(
        incidents, ANDERLECHT, datetime(2024, 5, 31, 8, tzinfo=UTC), 0, 1, weapons((HANDGUN, 1))
    )
    assert totals(breakdown(statistics, position)) == (1, 0, 1)
    with pytest.raises(grpc.RpcError) as failure:
        breakdown(statistics, position + 1)
    assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE
