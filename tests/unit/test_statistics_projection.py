"""The statistics projection as a pure fold: buckets, local periods, corrections, unknown ids.

Events are stand-ins with the attributes the projection reads (the domain's events carry the
same names), so these tests need neither a store nor a running application.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.statistics import (
    AREA_KINDS,
    PERIOD_KINDS,
    Bucket,
    IncidentFacts,
    StatisticsBatch,
    Totals,
    buckets,
    period_keys,
)
from service.areas import load_catalog
from service.store.transcoding import registry_transcoder

BRUSSELS = load_catalog("brussels")
ZONE = ZoneInfo(BRUSSELS.timezone)
ANDERLECHT, MIDI = "21001", "5341"  # Anderlecht is in police zone Midi
BRUXELLES, CAPITALE = "21004", "5339"  # Bruxelles-Ville is in zone Capitale/Ixelles
ETTERBEEK, MONTGOMERY = "21005", "5343"


def reported(
    municipality: str = ANDERLECHT,
    occurred_at: datetime = datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
    killed: int = 0,
    injured: int = 1,
) -> SimpleNamespace:
    """A ShootingReported stand-in (the police zone derived from the catalog)."""
    return SimpleNamespace(
        municipality_code=municipality,
        police_zone_code=BRUSSELS.zone_of(municipality),
        occurred_at=occurred_at,
        killed=killed,
        injured=injured,
    )


def revised(killed: int, injured: int) -> SimpleNamespace:
    """A CasualtiesRevised stand-in."""
    return SimpleNamespace(killed=killed, injured=injured, reason="victim died")


def amended(**corrections: Any) -> SimpleNamespace:
    """An IncidentAmended stand-in; the zone is set only with a municipality, as the app does."""
    municipality = corrections.get("municipality_code")
    zone = BRUSSELS.zone_of(municipality) if municipality else ""
    return SimpleNamespace(corrections=corrections, police_zone_code=zone, reason="fix")


def fold(*events: tuple[UUID, str, Any]) -> StatisticsBatch:
    batch = StatisticsBatch(BRUSSELS, {})
    for incident_id, event_type, event in events:
        batch.apply(incident_id, event_type, event)
    return batch


def table(batch: StatisticsBatch) -> dict[Bucket, tuple[int, int, int]]:
    """The batch's nonzero deltas as plain tuples."""
    return {b: (t.incidents, t.killed, t.injured) for b, t in batch.nonzero_deltas()}


def expected_buckets(
    municipality: str, zone: str, periods: dict[str, str], counts: tuple[int, int, int]
) -> dict[Bucket, tuple[int, int, int]]:
    return {
        Bucket(area_kind, code, period_kind, periods[period_kind]): counts
        for area_kind, code in (("municipality", municipality), ("police_zone", zone))
        for period_kind in PERIOD_KINDS
    }


# --- A report --------------------------------------------------------------------------


def test_a_report_counts_once_in_eight_buckets():
    incident = uuid4()
    batch = fold((incident, "ShootingReported", reported(killed=1, injured=2)))

    assert table(batch) == expected_buckets(
        ANDERLECHT,
        MIDI,
        {"day": "2024-06-01", "week": "2024-W22", "month": "2024-06", "year": "2024"},
        (1, 1, 2),
    )
    assert len(table(batch)) == len(AREA_KINDS) * len(PERIOD_KINDS) == 8
    assert batch.changed == {incident}
    assert batch.facts[incident] == IncidentFacts(
        ANDERLECHT, MIDI, datetime(2024, 6, 1, 10, 0, tzinfo=UTC), 1, 2
    )


def test_two_reports_in_the_same_buckets_add_up():
    when = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    batch = fold(
        (uuid4(), "ShootingReported", reported(occurred_at=when, killed=1, injured=0)),
        (uuid4(), "ShootingReported", reported(occurred_at=when + timedelta(hours=1), injured=3)),
    )
    assert set(table(batch).values()) == {(2, 1, 3)}
    assert len(table(batch)) == 8


def test_reports_in_two_municipalities_of_one_zone_share_the_zone_buckets():
    batch = fold(
        (uuid4(), "ShootingReported", reported(ANDERLECHT)),
        (uuid4(), "ShootingReported", reported("21013")),  # Saint-Gilles, also zone Midi
    )
    rows = table(batch)
    assert rows[Bucket("municipality", ANDERLECHT, "year", "2024")] == (1, 0, 1)
    assert rows[Bucket("municipality", "21013", "year", "2024")] == (1, 0, 1)
    assert rows[Bucket("police_zone", MIDI, "year", "2024")] == (2, 0, 2)
    assert len(rows) == 12


# --- Periods in the catalog's time zone ---------------------------------------------------


def test_new_years_eve_at_23_30_utc_counts_in_the_next_local_day_week_month_and_year():
    # 2023-12-31 is a Sunday (ISO 2023-W52); 23:30 UTC is Monday 00:30 in Brussels (UTC+1).
    moment = datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
    assert period_keys(moment, ZoneInfo("UTC")) == {
        "day": "2023-12-31",
        "week": "2023-W52",
        "month": "2023-12",
        "year": "2023",
    }
    local = {"day": "2024-01-01", "week": "2024-W01", "month": "2024-01", "year": "2024"}
    assert period_keys(moment, ZONE) == local

    batch = fold((uuid4(), "ShootingReported", reported(occurred_at=moment)))
    assert table(batch) == expected_buckets(ANDERLECHT, MIDI, local, (1, 0, 1))


def test_the_same_instant_in_any_offset_lands_in_the_same_buckets():
    utc = datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
    toronto = utc.astimezone(ZoneInfo("America/Toronto"))  # 18:30 on the 31st over there
    fixed = utc.astimezone(timezone(timedelta(hours=5, minutes=30)))
    facts = [IncidentFacts(ANDERLECHT, MIDI, moment, 0, 1) for moment in (utc, toronto, fixed)]
    assert buckets(facts[0], ZONE) == buckets(facts[1], ZONE) == buckets(facts[2], ZONE)


def test_summer_time_moves_the_month_two_hours_before_utc_midnight():
    # Brussels is UTC+2 in summer: 22:30 UTC on 30 June is 00:30 on 1 July.
    assert period_keys(datetime(2024, 6, 30, 22, 30, tzinfo=UTC), ZONE)["month"] == "2024-07"
    assert period_keys(datetime(2024, 6, 30, 21, 30, tzinfo=UTC), ZONE)["month"] == "2024-06"


def test_the_week_key_uses_the_iso_week_year_not_the_calendar_year():
    # Friday 1 January 2021 belongs to ISO week 53 of 2020.
    keys = period_keys(datetime(2021, 1, 1, 12, 0, tzinfo=ZONE), ZONE)
    assert keys == {"day": "2021-01-01", "week": "2020-W53", "month": "2021-01", "year": "2021"}
    # Monday 29 December 2025 already belongs to ISO week 1 of 2026.
    keys = period_keys(datetime(2025, 12, 29, 12, 0, tzinfo=ZONE), ZONE)
    assert (keys["week"], keys["year"]) == ("2026-W01", "2025")


# --- Corrections --------------------------------------------------------------------------


def test_a_casualty_revision_changes_killed_and_injured_but_not_incidents():
    incident = uuid4()
    report = (incident, "ShootingReported", reported(killed=0, injured=1))
    batch = fold(report, (incident, "CasualtiesRevised", revised(killed=1, injured=0)))
    assert set(table(batch).values()) == {(1, 1, 0)}
    assert len(table(batch)) == 8

    # Folded in a later batch, on top of the known facts: only the difference moves.
    later = StatisticsBatch(BRUSSELS, fold(report).facts)
    later.apply(incident, "CasualtiesRevised", revised(killed=2, injured=3))
    assert set(table(later).values()) == {(0, 2, 2)}
    assert later.changed == {incident}


def test_a_revision_to_the_same_totals_changes_nothing():
    incident = uuid4()
    known = fold((incident, "ShootingReported", reported(killed=1, injured=1))).facts
    batch = StatisticsBatch(BRUSSELS, known)
    batch.apply(incident, "CasualtiesRevised", revised(killed=1, injured=1))
    assert table(batch) == {}
    assert batch.changed == set()


def test_an_amendment_of_the_municipality_moves_the_counts_and_the_zone():
    incident = uuid4()
    report = (incident, "ShootingReported", reported(ANDERLECHT, killed=1, injured=2))
    batch = StatisticsBatch(BRUSSELS, fold(report).facts)
    batch.apply(incident, "IncidentAmended", amended(municipality_code=BRUXELLES))

    periods = {"day": "2024-06-01", "week": "2024-W22", "month": "2024-06", "year": "2024"}
    assert table(batch) == {
        **expected_buckets(ANDERLECHT, MIDI, periods, (-1, -1, -2)),
        **expected_buckets(BRUXELLES, CAPITALE, periods, (1, 1, 2)),
    }
    assert batch.facts[incident].police_zone_code == CAPITALE

    # In the same batch as the report, the old place never shows.
    assert table(
        fold(report, (incident, "IncidentAmended", amended(municipality_code=BRUXELLES)))
    ) == (expected_buckets(BRUXELLES, CAPITALE, periods, (1, 1, 2)))


def test_an_amendment_within_the_same_zone_leaves_the_zone_buckets_alone():
    incident = uuid4()
    known = fold((incident, "ShootingReported", reported(ANDERLECHT))).facts
    batch = StatisticsBatch(BRUSSELS, known)
    batch.apply(incident, "IncidentAmended", amended(municipality_code="21007"))  # Forest, Midi
    rows = table(batch)
    assert {b.area_kind for b in rows} == {"municipality"}
    assert rows[Bucket("municipality", ANDERLECHT, "day", "2024-06-01")] == (-1, 0, -1)
    assert rows[Bucket("municipality", "21007", "day", "2024-06-01")] == (1, 0, 1)


def test_an_amendment_of_the_time_moves_the_counts_between_periods():
    incident = uuid4()
    report = (
        incident,
        "ShootingReported",
        reported(occurred_at=datetime(2024, 6, 1, 10, tzinfo=UTC)),
    )
    batch = StatisticsBatch(BRUSSELS, fold(report).facts)
    # A week later, still June: the day and week move, the month and year stay.
    batch.apply(
        incident, "IncidentAmended", amended(occurred_at=datetime(2024, 6, 8, 10, tzinfo=UTC))
    )
    rows = table(batch)
    assert rows[Bucket("municipality", ANDERLECHT, "day", "2024-06-01")] == (-1, 0, -1)
    assert rows[Bucket("municipality", ANDERLECHT, "day", "2024-06-08")] == (1, 0, 1)
    assert rows[Bucket("police_zone", MIDI, "week", "2024-W22")] == (-1, 0, -1)
    assert rows[Bucket("police_zone", MIDI, "week", "2024-W23")] == (1, 0, 1)
    assert not any(b.period_kind in ("month", "year") for b in rows)
    # The zone did not change though the event carries none (only the time was corrected).
    assert batch.facts[incident].police_zone_code == MIDI
    assert len(rows) == 8


def test_an_amendment_of_other_fields_changes_nothing():
    incident = uuid4()
    known = fold((incident, "ShootingReported", reported())).facts
    batch = StatisticsBatch(BRUSSELS, known)
    batch.apply(incident, "IncidentAmended", amended(address="Rue Wayez 1", drug_nexus=True))
    assert table(batch) == {}
    assert batch.changed == set()


def test_moving_an_incident_away_and_back_nets_to_nothing():
    incident = uuid4()
    known = fold((incident, "ShootingReported", reported(ANDERLECHT))).facts
    batch = StatisticsBatch(BRUSSELS, known)
    batch.apply(incident, "IncidentAmended", amended(municipality_code=ETTERBEEK))
    batch.apply(incident, "IncidentAmended", amended(municipality_code=ANDERLECHT))
    assert table(batch) == {}
    assert batch.touched == 16  # both places were touched, with zero net change


# --- Events the projection does not know --------------------------------------------------


def test_events_for_unknown_incidents_are_ignored():
    stranger = uuid4()
    batch = fold(
        (stranger, "CasualtiesRevised", revised(killed=3, injured=3)),
        (stranger, "IncidentAmended", amended(municipality_code=BRUXELLES)),
    )
    assert table(batch) == {}
    assert batch.facts == {}
    assert batch.changed == set()


def test_events_of_other_types_are_ignored():
    incident = uuid4()
    known = fold((incident, "ShootingReported", reported())).facts
    batch = StatisticsBatch(BRUSSELS, known)
    batch.apply(incident, "AttributedToGang", SimpleNamespace(gang_id=uuid4()))
    batch.apply(uuid4(), "GangRegistered", SimpleNamespace(name="Kings"))
    assert table(batch) == {}
    assert batch.facts == known


def test_the_batch_does_not_mutate_the_facts_it_was_given():
    incident = uuid4()
    known = fold((incident, "ShootingReported", reported(killed=0))).facts
    snapshot = dict(known)
    batch = StatisticsBatch(BRUSSELS, known)
    batch.apply(incident, "CasualtiesRevised", revised(killed=4, injured=0))
    assert known == snapshot
    assert batch.facts[incident].killed == 4


# --- Property: folding corrections equals reporting the final facts -----------------------

MUNICIPALITIES = sorted(BRUSSELS.municipalities)[:6]  # spans several police zones
INCIDENTS = [UUID(int=n + 1) for n in range(4)]
# Instants around New Year and the summer-time changes, so local periods differ from UTC.
BASES = [
    datetime(2023, 12, 31, 22, 0, tzinfo=UTC),
    datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
    datetime(2024, 6, 30, 21, 0, tzinfo=UTC),
    datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
]
OFFSETS = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=2)), ZONE]

moments = st.builds(
    lambda base, minutes, tz: (base + timedelta(minutes=minutes)).astimezone(tz),
    st.sampled_from(BASES),
    st.integers(min_value=-26 * 60, max_value=26 * 60),
    st.sampled_from(OFFSETS),
)
casualty = st.integers(min_value=0, max_value=3)

report_steps = st.tuples(
    st.just("ShootingReported"),
    st.sampled_from(INCIDENTS),
    st.builds(reported, st.sampled_from(MUNICIPALITIES), moments, casualty, casualty),
)
revision_steps = st.tuples(
    st.just("CasualtiesRevised"), st.sampled_from(INCIDENTS), st.builds(revised, casualty, casualty)
)
amendment_steps = st.tuples(
    st.just("IncidentAmended"),
    st.sampled_from(INCIDENTS),
    st.one_of(
        st.builds(lambda m: amended(municipality_code=m), st.sampled_from(MUNICIPALITIES)),
        st.builds(lambda t: amended(occurred_at=t), moments),
        st.builds(
            lambda m, t: amended(municipality_code=m, occurred_at=t),
            st.sampled_from(MUNICIPALITIES),
            moments,
        ),
        st.just(amended(address="elsewhere")),
    ),
)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[str, UUID, Any]]:
    """A log: every incident reported at most once, corrections before and after its report."""
    steps = draw(st.lists(st.one_of(revision_steps, amendment_steps), max_size=25))
    reports = draw(st.lists(report_steps, max_size=len(INCIDENTS), unique_by=lambda s: s[1]))
    for report in reports:
        steps.insert(draw(st.integers(min_value=0, max_value=len(steps))), report)
    return steps


def final_facts(log: list[tuple[str, UUID, Any]]) -> dict[UUID, dict[str, Any]]:
    """The current facts of every reported incident, computed without the projection."""
    current: dict[UUID, dict[str, Any]] = {}
    for event_type, incident, event in log:
        if event_type == "ShootingReported":
            current[incident] = dict(vars(event))
        elif incident not in current:
            continue
        elif event_type == "CasualtiesRevised":
            current[incident].update(killed=event.killed, injured=event.injured)
        else:
            for name in ("occurred_at", "municipality_code"):
                if name in event.corrections:
                    current[incident][name] = event.corrections[name]
            current[incident]["police_zone_code"] = BRUSSELS.zone_of(
                current[incident]["municipality_code"]
            )
    return current


def statistics(deltas: list[tuple[Bucket, Totals]]) -> dict[Bucket, tuple[int, int, int]]:
    """Sum deltas per bucket, leaving out buckets that sum to nothing."""
    incidents: Counter[Bucket] = Counter()
    killed: Counter[Bucket] = Counter()
    injured: Counter[Bucket] = Counter()
    for bucket, totals in deltas:
        incidents[bucket] += totals.incidents
        killed[bucket] += totals.killed
        injured[bucket] += totals.injured
    every = set(incidents) | set(killed) | set(injured)
    summed = {b: (incidents[b], killed[b], injured[b]) for b in every}
    return {b: counts for b, counts in summed.items() if counts != (0, 0, 0)}


def fold_in_pages(log: list[tuple[str, UUID, Any]], cuts: list[int]) -> list[tuple[Bucket, Totals]]:
    """Fold the log in pages, each batch starting from the facts the previous ones left."""
    known: dict[UUID, IncidentFacts] = {}
    deltas: list[tuple[Bucket, Totals]] = []
    bounds = [0, *sorted(cuts), len(log)]
    for start, end in pairwise(bounds):
        batch = StatisticsBatch(BRUSSELS, known)
        for event_type, incident, event in log[start:end]:
            batch.apply(incident, event_type, event)
        deltas.extend(batch.nonzero_deltas())
        known = {**known, **{i: batch.facts[i] for i in batch.changed}}
    return deltas


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(log=logs(), data=st.data())
def test_folding_corrections_equals_reporting_the_final_facts(log, data):
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(log)), max_size=4))
    folded = statistics(fold_in_pages(log, cuts))

    direct = StatisticsBatch(BRUSSELS, {})
    final = final_facts(log)
    for incident, facts in final.items():
        direct.apply(incident, "ShootingReported", SimpleNamespace(**facts))
    assert folded == statistics(list(direct.nonzero_deltas()))

    # And in absolute terms: every reported incident counts once per area kind and period kind.
    for area_kind in AREA_KINDS:
        for period_kind in PERIOD_KINDS:
            counted = sum(
                c[0]
                for b, c in folded.items()
                if (b.area_kind, b.period_kind) == (area_kind, period_kind)
            )
            assert counted == len(final)
    assert all(counts[0] >= 0 for counts in folded.values())


@pytest.mark.parametrize("period_kind", PERIOD_KINDS)
def test_the_property_checks_local_periods(period_kind):
    # Guard for the property test: its instants do fall in different local and UTC periods.
    differ = [
        base
        for base in BASES
        if period_keys(base, ZONE)[period_kind] != period_keys(base, ZoneInfo("UTC"))[period_kind]
        or period_keys(base + timedelta(hours=1), ZONE)[period_kind]
        != period_keys(base + timedelta(hours=1), ZoneInfo("UTC"))[period_kind]
    ]
    assert differ


# --- The stored-payload path folds exactly like decoded events --------------------------


def stored_payload(event: Any) -> dict[str, Any]:
    """The event's attributes as the store keeps them (what RegistryMapper.to_payload reads)."""
    payload: dict[str, Any] = json.loads(registry_transcoder().encode(dict(vars(event))))
    return payload


@settings(max_examples=100, derandomize=True, deadline=None, database=None)
@given(log=logs())
def test_folding_stored_payloads_equals_folding_decoded_events(log):
    decoded = StatisticsBatch(BRUSSELS, {})
    stored = StatisticsBatch(BRUSSELS, {})
    for event_type, incident, event in log:
        decoded.apply(incident, event_type, event)
        stored.apply_fields(incident, event_type, stored_payload(event))
    assert stored.facts == decoded.facts
    assert stored.changed == decoded.changed
    assert sorted(stored.nonzero_deltas()) == sorted(decoded.nonzero_deltas())
