"""The incidents read model: its pure fold, and its tables on an in-memory SQLite view store.

Events are stand-ins with the attributes the projection reads (the domain's events carry the
same names). The property test folds logs full of corrections, in pages, into the tables and
checks they hold exactly what a log with the final facts from the start gives.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import MISSING, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import count, pairwise
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import Notification
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.base import Recorded
from projections.incident_queries import (
    IncidentFilter,
    Selection,
    incident_breakdown,
    list_incidents,
)
from projections.incidents import (
    CONFIRMED,
    SUSPECTED,
    UNATTRIBUTED,
    IncidentState,
    LocalTime,
    build_state,
    confidence_band,
    fold,
    fold_batch,
    from_micros,
    local_time,
    to_micros,
    weapon_pairs,
)
from projections.incidents_model import IncidentsProjection, load_states
from projections.store import ViewStore
from service.areas import load_catalog
from service.domain.incident import Incident
from service.domain.values import AttributionStatus, LinkKind, TimePrecision, Weapon, WeaponKind
from service.store.transcoding import registry_mapper, registry_transcoder
from tests.support.projections import dump_models

BRUSSELS = load_catalog("brussels")
ZONE = ZoneInfo(BRUSSELS.timezone)
ANDERLECHT, MIDI = "21001", "5341"
BRUXELLES, CAPITALE = "21004", "5339"
WHEN = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)  # Saturday, 12:00 in Brussels
REPORTED = datetime(2024, 7, 1, tzinfo=UTC)
GANG_A, GANG_B = UUID(int=101), UUID(int=102)


def reported(
    municipality: str = ANDERLECHT,
    occurred_at: datetime = WHEN,
    killed: int = 0,
    injured: int = 1,
    weapons: tuple[Weapon, ...] = (Weapon(WeaponKind.HANDGUN, 1),),
    address: str = "Place de la Vaillance",
    description: str = "Shots fired",
    drug_nexus: bool = False,
) -> SimpleNamespace:
    """A ShootingReported stand-in (the police zone derived from the catalog)."""
    return SimpleNamespace(
        occurred_at=occurred_at,
        reported_at=REPORTED,
        municipality_code=municipality,
        police_zone_code=BRUSSELS.zone_of(municipality),
        killed=killed,
        injured=injured,
        weapons=weapons,
        address=address,
        description=description,
        drug_nexus=drug_nexus,
    )


def revised(killed: int, injured: int) -> SimpleNamespace:
    return SimpleNamespace(killed=killed, injured=injured, reason="victim died")


def amended(**corrections: Any) -> SimpleNamespace:
    """An IncidentAmended stand-in; the zone is set only with a municipality, as the app does."""
    municipality = corrections.get("municipality_code")
    zone = BRUSSELS.zone_of(municipality) if municipality else ""
    return SimpleNamespace(corrections=corrections, police_zone_code=zone, reason="fix")


def attributed(
    gang: UUID, confidence: float = 0.7, status: str = "suspected", at: datetime = REPORTED
) -> SimpleNamespace:
    return SimpleNamespace(
        gang_id=gang,
        confidence=confidence,
        status=AttributionStatus(status),
        basis="informant",
        occurred_at=at,
    )


def retracted(gang: UUID) -> SimpleNamespace:
    return SimpleNamespace(gang_id=gang, reason="alibi", occurred_at=REPORTED)


def linked() -> SimpleNamespace:
    return SimpleNamespace(related_incident_id=uuid4(), kind="same_series", note="")


class Log:
    """Numbers events like a log: positions globally, versions per incident."""

    def __init__(self) -> None:
        self._positions = count(1)
        self._versions: dict[UUID, int] = {}

    def __call__(self, incident: UUID, event_type: str, event: Any) -> Recorded:
        version = self._versions.get(incident, 0) + 1
        self._versions[incident] = version
        return Recorded(
            position=next(self._positions),
            event_type=event_type,
            originator_id=incident,
            originator_version=version,
            event=event,
        )


def folded(*events: Recorded) -> IncidentState | None:
    state = None
    for recorded in events:
        state = fold(state, recorded)
    return state


# --- Bands, local time, weapons -----------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "band"),
    [
        (0.0, "low"),
        (0.4999, "low"),
        (0.5, "medium"),
        (0.7999, "medium"),
        (0.8, "high"),
        (1, "high"),
    ],
)
def test_confidence_bands_are_low_below_half_and_high_from_eight_tenths(confidence, band):
    assert confidence_band(confidence) == band


def test_local_time_is_taken_in_the_catalog_time_zone():
    # 23:30 UTC on Sunday 31 December 2023 is 00:30 on Monday 1 January 2024 in Brussels.
    assert local_time(datetime(2023, 12, 31, 23, 30, tzinfo=UTC), ZONE) == LocalTime(
        "2024-01-01", "2024-W01", "2024-01", "2024", 0, 1
    )
    # Summer time: 21:59 UTC on Sunday 30 June is 23:59 the same day.
    assert local_time(datetime(2024, 6, 30, 21, 59, tzinfo=UTC), ZONE) == LocalTime(
        "2024-06-30", "2024-W26", "2024-06", "2024", 23, 7
    )


def test_microseconds_round_trip_and_order_instants_in_any_offset():
    moment = datetime(2024, 3, 31, 0, 59, 59, 999_999, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))
    assert to_micros(elsewhere) == to_micros(moment)
    assert to_micros(moment) < to_micros(moment + timedelta(microseconds=1))
    assert to_micros(datetime(1960, 1, 1, tzinfo=UTC)) < 0


def test_weapons_are_ordered_by_kind_and_a_kind_given_twice_is_summed():
    assert weapon_pairs(
        [
            Weapon(WeaponKind.SHOTGUN, 1),
            Weapon(WeaponKind.ASSAULT_RIFLE, 2),
            Weapon(WeaponKind.SHOTGUN, 2),
        ]
    ) == (("assault_rifle", 2), ("shotgun", 3))


# --- The fold -----------------------------------------------------------------------------


def test_a_state_built_from_its_fields_equals_one_constructed():
    # build_state skips the dataclass's __init__, which is safe only without defaults and
    # without __post_init__.
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(IncidentState))
    assert not hasattr(IncidentState, "__post_init__")
    state = folded(Log()(uuid4(), "ShootingReported", reported()))
    assert state is not None
    assert build_state(dict(vars(state))) == IncidentState(**vars(state))


def test_a_report_sets_every_fact_and_the_version_and_position():
    log, incident = Log(), uuid4()
    state = folded(log(incident, "ShootingReported", reported(killed=1, drug_nexus=True)))
    assert state == IncidentState(
        incident_id=incident,
        occurred_at=WHEN,
        reported_at=REPORTED,
        municipality_code=ANDERLECHT,
        police_zone_code=MIDI,
        killed=1,
        injured=1,
        weapons=(("handgun", 1),),
        address="Place de la Vaillance",
        description="Shots fired",
        drug_nexus=True,
        attributions=(),
        link_count=0,
        version=1,
        position=1,
    )
    assert state.attribution_status == UNATTRIBUTED
    assert state.strongest_band == ""


def test_corrections_replace_the_facts_they_name_and_nothing_else():
    log, incident = Log(), uuid4()
    later = datetime(2024, 6, 3, 15, tzinfo=UTC)
    state = folded(
        log(incident, "ShootingReported", reported()),
        log(incident, "CasualtiesRevised", revised(killed=2, injured=0)),
        log(incident, "IncidentAmended", amended(municipality_code=BRUXELLES)),
        log(incident, "IncidentAmended", amended(occurred_at=later, location=None)),
        log(
            incident,
            "IncidentAmended",
            amended(weapons=(Weapon(WeaponKind.ASSAULT_RIFLE, 3),), description="Kalashnikov"),
        ),
        log(incident, "IncidentAmended", amended(address="Rue Haute 1", drug_nexus=True)),
        log(incident, "IncidentAmended", amended(assailant_count=4)),
    )
    assert state is not None
    assert (state.municipality_code, state.police_zone_code) == (BRUXELLES, CAPITALE)
    assert (state.occurred_at, state.reported_at) == (later, REPORTED)
    assert (state.killed, state.injured) == (2, 0)
    assert state.weapons == (("assault_rifle", 3),)
    assert (state.address, state.description, state.drug_nexus) == (
        "Rue Haute 1",
        "Kalashnikov",
        True,
    )
    assert (state.version, state.position) == (7, 7)


def test_an_amendment_of_the_time_alone_keeps_the_zone():
    log, incident = Log(), uuid4()
    state = folded(
        log(incident, "ShootingReported", reported(BRUXELLES)),
        log(incident, "IncidentAmended", amended(occurred_at=WHEN + timedelta(days=1))),
    )
    assert state is not None
    assert state.police_zone_code == CAPITALE


def test_attributions_are_added_revised_and_retracted_and_derive_the_status_and_band():
    log, incident = Log(), uuid4()
    report = log(incident, "ShootingReported", reported())
    events = [report, log(incident, "AttributedToGang", attributed(GANG_B, 0.3))]
    state = folded(*events)
    assert state is not None
    assert (state.attribution_status, state.strongest_band) == (SUSPECTED, "low")

    events.append(log(incident, "AttributedToGang", attributed(GANG_A, 0.6)))
    state = folded(*events)
    assert state is not None
    assert [a.gang_id for a in state.attributions] == [GANG_A, GANG_B]  # by gang id
    assert (state.attribution_status, state.strongest_band) == (SUSPECTED, "medium")

    # A revision replaces the attribution to that gang: confirmed (at low confidence).
    events.append(log(incident, "AttributedToGang", attributed(GANG_B, 0.2, "confirmed")))
    state = folded(*events)
    assert state is not None
    assert len(state.attributions) == 2
    assert state.attributions[1].confidence == 0.2
    assert state.attributions[1].band == "low"
    assert (state.attribution_status, state.strongest_band) == (CONFIRMED, "medium")

    events.append(log(incident, "AttributionRetracted", retracted(GANG_B)))
    state = folded(*events)
    assert state is not None
    assert [a.gang_id for a in state.attributions] == [GANG_A]
    assert state.attribution_status == SUSPECTED

    events.append(log(incident, "AttributionRetracted", retracted(GANG_A)))
    state = folded(*events)
    assert state is not None
    assert (state.attributions, state.attribution_status, state.strongest_band) == (
        (),
        UNATTRIBUTED,
        "",
    )
    assert state.version == 6


def test_links_are_counted():
    log, incident = Log(), uuid4()
    state = folded(
        log(incident, "ShootingReported", reported()),
        log(incident, "IncidentLinked", linked()),
        log(incident, "IncidentLinked", linked()),
    )
    assert state is not None
    assert (state.link_count, state.version) == (2, 3)


def test_events_of_unknown_incidents_and_of_other_types_are_ignored():
    log, stranger, incident = Log(), uuid4(), uuid4()
    assert folded(log(stranger, "CasualtiesRevised", revised(1, 1))) is None
    report = log(incident, "ShootingReported", reported())
    state = fold(None, report)
    assert fold(state, log(incident, "GangRegistered", SimpleNamespace(name="X"))) == state
    changed = fold_batch(
        {},
        [
            log(stranger, "AttributedToGang", attributed(GANG_A)),
            report,
            log(stranger, "IncidentAmended", amended(address="x")),
        ],
    )
    assert set(changed) == {incident}


def test_a_batch_returns_the_changed_states_and_leaves_the_known_ones_alone():
    log, first, second = Log(), uuid4(), uuid4()
    known = fold_batch(
        {},
        [log(first, "ShootingReported", reported()), log(second, "ShootingReported", reported())],
    )
    snapshot = dict(known)
    changed = fold_batch(known, [log(first, "CasualtiesRevised", revised(3, 0))])
    assert known == snapshot
    assert set(changed) == {first}
    assert changed[first].killed == 3


# --- Property: corrections folded into the tables equal the final facts --------------------


@pytest.fixture
def view() -> Iterator[ViewStore]:
    store = memory_store()
    yield store
    store.close()


def memory_store() -> ViewStore:
    """A view store in memory with the incidents tables (one connection: one thread)."""
    store = ViewStore(lambda: sqlite3.connect(":memory:", isolation_level=None), "sqlite")
    projection = IncidentsProjection(BRUSSELS)
    store.install(projection.name, projection.version, projection.schema, projection.tables)
    return store


def apply_pages(store: ViewStore, events: list[Recorded], cuts: list[int]) -> None:
    """Apply the events in pages, one transaction each, as the runner does."""
    projection = IncidentsProjection(BRUSSELS)
    for start, end in pairwise([0, *sorted(cuts), len(events)]):
        with store.transaction() as tx:
            projection.apply(tx, events[start:end])


def test_the_tables_round_trip_every_state(view):
    log, incident = Log(), uuid4()
    events = [
        log(incident, "ShootingReported", reported(weapons=(Weapon(WeaponKind.OTHER, 2),))),
        log(incident, "AttributedToGang", attributed(GANG_A, 0.8, "confirmed")),
        log(incident, "AttributedToGang", attributed(GANG_B, 1 / 3)),
        log(incident, "IncidentLinked", linked()),
    ]
    apply_pages(view, events, [1, 3])
    with view.transaction(write=False) as tx:
        assert load_states(tx, [incident, uuid4()]) == {incident: folded(*events)}


INCIDENTS = [UUID(int=n + 1) for n in range(4)]
GANGS = [GANG_A, GANG_B, UUID(int=103)]
MUNICIPALITIES = sorted(BRUSSELS.municipalities)[:6]  # spans several police zones
BASES = [
    datetime(2023, 12, 31, 22, 0, tzinfo=UTC),
    datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
    datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
]
moments = st.builds(
    lambda base, minutes, tz: (base + timedelta(minutes=minutes)).astimezone(tz),
    st.sampled_from(BASES),
    st.integers(min_value=-26 * 60, max_value=26 * 60),
    st.sampled_from([UTC, timezone(timedelta(hours=-5)), ZONE]),
)
casualty = st.integers(min_value=0, max_value=3)
weapon_lists = st.lists(
    st.builds(Weapon, st.sampled_from(list(WeaponKind)), st.integers(min_value=1, max_value=3)),
    max_size=3,
    unique_by=lambda w: w.kind,
).map(tuple)
texts = st.sampled_from(["Rue Haute 1", "CAFÉ Terrasse", "50% off", "drug_point", ""])
confidences = st.sampled_from([0.1, 0.4999, 0.5, 0.79, 0.8, 1.0])
statuses = st.sampled_from(["suspected", "confirmed"])

report_steps = st.tuples(
    st.sampled_from(INCIDENTS),
    st.just("ShootingReported"),
    st.builds(
        reported,
        st.sampled_from(MUNICIPALITIES),
        moments,
        casualty,
        casualty,
        weapon_lists,
        texts,
        texts,
        st.booleans(),
    ),
)
amendments = st.one_of(
    st.builds(lambda m: amended(municipality_code=m), st.sampled_from(MUNICIPALITIES)),
    st.builds(lambda t: amended(occurred_at=t), moments),
    st.builds(lambda w: amended(weapons=w), weapon_lists),
    st.builds(lambda a, d: amended(address=a, description=d), texts, texts),
    st.builds(lambda n: amended(drug_nexus=n, assailant_count=2), st.booleans()),
    st.builds(
        lambda m, t, w: amended(municipality_code=m, occurred_at=t, weapons=w),
        st.sampled_from(MUNICIPALITIES),
        moments,
        weapon_lists,
    ),
)
incidents = st.sampled_from(INCIDENTS)
later_steps = st.one_of(
    st.tuples(incidents, st.just("CasualtiesRevised"), st.builds(revised, casualty, casualty)),
    st.tuples(incidents, st.just("IncidentAmended"), amendments),
    st.tuples(
        incidents,
        st.just("AttributedToGang"),
        st.builds(attributed, st.sampled_from(GANGS), confidences, statuses, moments),
    ),
    st.tuples(
        incidents, st.just("AttributionRetracted"), st.builds(retracted, st.sampled_from(GANGS))
    ),
    st.tuples(incidents, st.just("IncidentLinked"), st.builds(linked)),
)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[UUID, str, Any]]:
    """A log: each incident reported at most once, mostly early, other events around it."""
    steps = draw(st.lists(later_steps, min_size=1, max_size=25))
    reports = draw(
        st.lists(report_steps, min_size=1, max_size=len(INCIDENTS), unique_by=lambda s: s[0])
    )
    for report in reports:
        steps.insert(draw(st.integers(min_value=0, max_value=len(steps) // 3)), report)
    return steps


def final_facts_log(steps: list[tuple[UUID, str, Any]]) -> list[tuple[UUID, str, Any]]:
    """A log that reports each incident with its final facts and attributes it to its gangs.

    Computed without the projection: dicts updated as the log says.
    """
    facts: dict[UUID, dict[str, Any]] = {}
    gangs: dict[UUID, dict[UUID, SimpleNamespace]] = {}
    for incident, event_type, event in steps:
        if event_type == "ShootingReported":
            facts[incident], gangs[incident] = dict(vars(event)), {}
        elif incident not in facts:
            continue
        elif event_type == "CasualtiesRevised":
            facts[incident].update(killed=event.killed, injured=event.injured)
        elif event_type == "IncidentAmended":
            for name in ("occurred_at", "municipality_code", "weapons", "address"):
                if name in event.corrections:
                    facts[incident][name] = event.corrections[name]
            for name in ("description", "drug_nexus"):
                if name in event.corrections:
                    facts[incident][name] = event.corrections[name]
            zone = BRUSSELS.zone_of(facts[incident]["municipality_code"])
            facts[incident]["police_zone_code"] = zone
        elif event_type == "AttributedToGang":
            gangs[incident][event.gang_id] = event
        elif event_type == "AttributionRetracted":
            gangs[incident].pop(event.gang_id, None)
    direct: list[tuple[UUID, str, Any]] = []
    for incident, known in facts.items():
        direct.append((incident, "ShootingReported", SimpleNamespace(**known)))
        direct.extend((incident, "AttributedToGang", g) for g in gangs[incident].values())
    return direct


def numbered(steps: list[tuple[UUID, str, Any]]) -> list[Recorded]:
    log = Log()
    return [log(incident, event_type, event) for incident, event_type, event in steps]


def model(store: ViewStore) -> tuple[list[Any], list[Any]]:
    """Every incident as listed (without what counts events) and breakdowns of all of them."""
    with store.transaction(write=False) as tx:
        listed = [
            (
                replace(i.state, version=0, position=0, link_count=0),
                i.local,
            )
            for i in list_incidents(tx, IncidentFilter(), after=None, limit=100)
        ]
        breakdowns = [
            incident_breakdown(tx, Selection()),
            incident_breakdown(tx, Selection("police_zone", (MIDI, CAPITALE), "week", "2024-W01")),
            incident_breakdown(tx, Selection("municipality", tuple(MUNICIPALITIES[:3]))),
        ]
    return listed, breakdowns


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=logs(), data=st.data())
def test_corrections_folded_in_pages_equal_the_final_facts_from_the_start(steps, data):
    events = numbered(steps)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=4))
    corrected, direct = memory_store(), memory_store()
    try:
        apply_pages(corrected, events, cuts)
        apply_pages(direct, numbered(final_facts_log(steps)), [])
        folded_model, direct_model = model(corrected), model(direct)
    finally:
        corrected.close()
        direct.close()
    assert folded_model == direct_model
    listed, breakdowns = folded_model
    reported_ids = {
        incident for incident, event_type, _ in steps if event_type == "ShootingReported"
    }
    assert {state.incident_id for state, _ in listed} == reported_ids
    assert breakdowns[0].incidents == len(reported_ids)


# --- The stored-payload path folds exactly like decoded events ------------------------------


TRANSCODER = registry_transcoder()


def stored_and_read_back(events: list[Recorded]) -> tuple[list[Recorded], list[Recorded]]:
    """The events stored as the registry stores them, then read back two ways.

    Decoded (as RegistryMapper.to_domain_event decodes them), and as their stored payloads
    alone (what RegistryMapper.to_payload gives), where reading `event` would fail.
    """
    decoded: list[Recorded] = []
    payloads: list[Recorded] = []
    for r in events:
        data = TRANSCODER.encode(dict(vars(r.event)))
        place: dict[str, Any] = {
            "position": r.position,
            "event_type": r.event_type,
            "originator_id": r.originator_id,
            "originator_version": r.originator_version,
        }
        decoded.append(Recorded(**place, event=SimpleNamespace(**TRANSCODER.decode(data))))
        payloads.append(Recorded(**place, payload=functools.partial(json.loads, data)))
    return decoded, payloads


def payload_only(events: list[Recorded]) -> list[Recorded]:
    """Stored events offering only their payloads: reading `event` would fail."""
    return [
        Recorded(
            position=r.position,
            event_type=r.event_type,
            originator_id=r.originator_id,
            originator_version=r.originator_version,
            payload=r.payload,
        )
        for r in events
    ]


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=logs(), data=st.data())
def test_folding_stored_payloads_equals_folding_decoded_events(steps, data):
    events = numbered(steps)
    decoded, payloads = stored_and_read_back(events)
    # The pure fold gives the very same states from either form.
    assert fold_batch({}, payloads) == fold_batch({}, decoded)
    # And the tables, folded in pages, hold the same rows as for the events never stored
    # (stored times come back with fixed offsets: the same instants, the same rows).
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=4))
    from_events, from_payloads = memory_store(), memory_store()
    try:
        apply_pages(from_events, events, cuts)
        apply_pages(from_payloads, payloads, cuts)
        projection = IncidentsProjection(BRUSSELS)
        assert dump_models(from_payloads, [projection]) == dump_models(from_events, [projection])
    finally:
        from_events.close()
        from_payloads.close()


def test_events_of_the_domain_fold_alike_from_the_store_and_decoded():
    # Real events, stored by the registry's mapper: the payload path reads their stored form.
    incident = Incident(
        occurred_at=WHEN,
        occurred_at_precision=TimePrecision.MINUTE,
        reported_at=REPORTED,
        municipality_code=ANDERLECHT,
        police_zone_code=MIDI,
        address="Place de la Vaillance",
        location=None,
        weapons=(Weapon(WeaponKind.SHOTGUN, 1), Weapon(WeaponKind.HANDGUN, 2)),
        assailant_count=2,
        assailants_masked=True,
        killed=0,
        injured=1,
        drug_nexus=False,
        description="Shots fired",
        sources=(),
        external_reference="BR.2024.000001",
    )
    incident.revise_casualties(occurred_at=REPORTED, killed=1, injured=2, reason="died")
    incident.attribute_to_gang(
        occurred_at=REPORTED,
        gang_id=GANG_B,
        confidence=0.9,
        status=AttributionStatus.CONFIRMED,
        basis="informant",
    )
    incident.attribute_to_gang(
        occurred_at=REPORTED,
        gang_id=GANG_A,
        confidence=0.5,
        status=AttributionStatus.SUSPECTED,
        basis="territory",
    )
    incident.amend(
        occurred_at=REPORTED,
        corrections={
            "occurred_at": WHEN - timedelta(hours=1),
            "municipality_code": BRUXELLES,
            "weapons": (Weapon(WeaponKind.ASSAULT_RIFLE, 3),),
            "drug_nexus": True,
        },
        police_zone_code=CAPITALE,
        reason="police report",
    )
    incident.retract_attribution(occurred_at=REPORTED, gang_id=GANG_B, reason="alibi")
    incident.link(
        occurred_at=REPORTED, related_incident_id=uuid4(), kind=LinkKind.SAME_SERIES, note=""
    )
    mapper = registry_mapper()
    stored = [
        Recorded.stored(
            Notification(e.originator_id, e.originator_version, e.topic, e.state, n), mapper
        )
        for n, e in enumerate(map(mapper.to_stored_event, incident.collect_events()), start=1)
    ]
    assert all(r.payload() is not None for r in stored)
    decoded = [
        Recorded(
            position=r.position,
            event_type=r.event_type,
            originator_id=r.originator_id,
            originator_version=r.originator_version,
            event=r.event,
        )
        for r in stored
    ]
    from_store = fold_batch({}, payload_only(stored))
    assert from_store == fold_batch({}, decoded)
    state = from_store[incident.id]
    assert (state.municipality_code, state.police_zone_code) == (BRUXELLES, CAPITALE)
    assert state.weapons == (("assault_rifle", 3),)
    assert [(a.gang_id, a.status) for a in state.attributions] == [(GANG_A, SUSPECTED)]
    assert (state.killed, state.injured, state.drug_nexus, state.link_count) == (1, 2, True, 1)
