"""IncidentQueryService.ListIncidents over a real channel, on SQLite and on PostgreSQL.

Every filter keeps exactly its incidents, pages cover the listing once in order, page tokens
are bound to their filters, bad requests name every bad field, writes are read back with
min_position, corrections are reflected exactly, and the served model equals a rebuilt one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from incident_registry_client.proto.incidents.v1 import incident_pb2
from incident_registry_client.proto.incidents.v1 import incident_query_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.incident_query_service_pb2_grpc import (
    IncidentQueryServiceStub,
)

from projections.incident_queries import IncidentFilter, list_incidents
from projections.incidents_model import IncidentsProjection
from service.areas import load_catalog
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.projections import rebuild
from tests.support.stores import BOTH_STORES

BRUSSELS = load_catalog("brussels")
ANDERLECHT, FOREST, MIDI = "21001", "21007", "5341"
BRUXELLES, CAPITALE = "21004", "5339"
ETTERBEEK, MONTGOMERY = "21005", "5343"
REPORTED = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
WAIT = 10.0

HANDGUN = incident_pb2.WEAPON_KIND_HANDGUN
RIFLE = incident_pb2.WEAPON_KIND_ASSAULT_RIFLE
SHOTGUN = incident_pb2.WEAPON_KIND_SHOTGUN
UNKNOWN = incident_pb2.WEAPON_KIND_UNKNOWN
SUSPECTED = incident_pb2.ATTRIBUTION_STATUS_SUSPECTED
CONFIRMED = incident_pb2.ATTRIBUTION_STATUS_CONFIRMED
UNATTRIBUTED_INCIDENT = pb.INCIDENT_ATTRIBUTION_STATUS_UNATTRIBUTED
SUSPECTED_INCIDENT = pb.INCIDENT_ATTRIBUTION_STATUS_SUSPECTED
CONFIRMED_INCIDENT = pb.INCIDENT_ATTRIBUTION_STATUS_CONFIRMED


@pytest.fixture
def queries(channel):
    return IncidentQueryServiceStub(channel)


def weapons(*pairs):
    return [incident_pb2.Weapon(kind=kind, count=count) for kind, count in pairs]


def report(incidents, municipality=ANDERLECHT, when=None, **fields):
    """Report a shooting (by default one injured, a handgun); return (id, position)."""
    fields.setdefault("weapons", weapons((HANDGUN, 1)))
    reply = incidents.ReportShooting(
        b.shooting(
            municipality_code=municipality,
            occurred_at=b.ts(when or datetime(2024, 5, 31, 8, tzinfo=UTC)),
            reported_at=b.ts(REPORTED),
            location=None,
            **fields,
        ),
        metadata=ACTOR_METADATA,
    )
    return reply.result.aggregate_id, reply.result.position


def attribute(incidents, incident_id, gang_id, confidence, status, when=REPORTED):
    request = b.attribution(
        incident_id, gang_id, confidence=confidence, status=status, occurred_at=b.ts(when)
    )
    return incidents.AttributeToGang(request, metadata=ACTOR_METADATA).result.position


def register_gang(gangs):
    return gangs.RegisterGang(b.gang(), metadata=ACTOR_METADATA).result.aggregate_id


def listing(queries, min_position=0, **filters):
    return queries.ListIncidents(
        pb.ListIncidentsRequest(min_position=min_position, **filters), timeout=WAIT
    )


def ids(reply):
    return [incident.incident_id for incident in reply.incidents]


def every_page(queries, min_position=0, **filters):
    """Every page of a listing: (incident ids in order, number of pages)."""
    found, pages, token = [], 0, ""
    while True:
        reply = listing(queries, min_position, page_token=token, **filters)
        found.extend(ids(reply))
        pages += 1
        token = reply.next_page_token
        if not token:
            return found, pages


def newest_first(times: dict[str, datetime]) -> list[str]:
    """Incident ids ordered as the listing orders them."""
    return sorted(times, key=lambda i: (times[i], i), reverse=True)


# --- Filters ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """Five incidents (a to e), two gangs, and the position of the last write."""

    ids: dict[str, str]
    times: dict[str, datetime]
    gang_x: str
    gang_y: str
    position: int

    def letters(self, reply):
        by_id = {incident_id: letter for letter, incident_id in self.ids.items()}
        return "".join(sorted(by_id[i] for i in ids(reply)))


def seed(incidents, gangs):
    times = {
        "a": datetime(2024, 5, 31, 8, 0, tzinfo=UTC),
        "b": datetime(2024, 6, 2, 21, 30, tzinfo=UTC),
        "c": datetime(2024, 6, 10, 12, 0, tzinfo=UTC),
        "d": datetime(2024, 6, 15, 23, 30, tzinfo=UTC),
        "e": datetime(2024, 6, 15, 23, 30, tzinfo=UTC),  # the same instant as d
    }
    facts = {
        "a": (ANDERLECHT, 1, 0, weapons((RIFLE, 2)), "Kalashnikov burst at a DRUG point", "Metro"),
        "b": (FOREST, 0, 2, weapons((HANDGUN, 1)), "Drive-by on a CAFÉ terrace", "Rue de Belgrade"),
        "c": (
            BRUXELLES,
            0,
            0,
            weapons((SHOTGUN, 1), (HANDGUN, 1)),
            "Shots at a façade",
            "Anspach 100, 50% store",
        ),
        "d": (BRUXELLES, 2, 3, weapons((UNKNOWN, 1)), "Règlement de comptes", "Sainte-Catherine"),
        "e": (ETTERBEEK, 0, 1, weapons((HANDGUN, 3)), "scooter_riders fired", "Chaussée de Wavre"),
    }
    found = {}
    for letter, (code, killed, injured, arms, description, address) in facts.items():
        found[letter], _ = report(
            incidents,
            code,
            times[letter],
            killed=killed,
            injured=injured,
            weapons=arms,
            description=description,
            address=address,
        )
    x, y = register_gang(gangs), register_gang(gangs)
    attribute(incidents, found["a"], x, 0.6, SUSPECTED)
    attribute(incidents, found["b"], x, 0.9, CONFIRMED)
    attribute(incidents, found["b"], y, 0.3, SUSPECTED)
    last = attribute(incidents, found["d"], y, 0.45, SUSPECTED)
    return Seeded(found, {found[k]: v for k, v in times.items()}, x, y, last)


def at(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text))
    return stamp


@BOTH_STORES
def test_every_filter_keeps_exactly_its_incidents(incidents, gangs, queries):
    seeded = seed(incidents, gangs)
    x, y = seeded.gang_x, seeded.gang_y
    cases = [
        ({}, "abcde"),
        ({"municipality_codes": [BRUXELLES]}, "cd"),
        ({"municipality_codes": [ETTERBEEK, ANDERLECHT]}, "ae"),
        ({"police_zone_codes": [MIDI]}, "ab"),
        ({"police_zone_codes": [MIDI, MONTGOMERY]}, "abe"),
        # Filters combine: in Anderlecht or Bruxelles AND in zone Midi.
        ({"municipality_codes": [ANDERLECHT, BRUXELLES], "police_zone_codes": [MIDI]}, "a"),
        ({"occurred_from": at("2024-06-02T21:30:00+00:00")}, "bcde"),  # inclusive
        ({"occurred_to": at("2024-06-10T12:00:00+00:00")}, "ab"),  # exclusive
        (
            {
                "occurred_from": at("2024-06-02T23:30:00+02:00"),  # the same instant as b
                "occurred_to": at("2024-06-16T01:30:00+02:00"),  # the same instant as d and e
            },
            "bc",
        ),
        ({"gang_ids": [x]}, "ab"),
        ({"gang_ids": [y]}, "bd"),
        ({"gang_ids": [x, y]}, "abd"),
        ({"gang_ids": [str(b.request_id())]}, ""),  # a gang without incidents
        ({"weapon_kinds": [HANDGUN]}, "bce"),
        ({"weapon_kinds": [SHOTGUN, UNKNOWN]}, "cd"),
        ({"weapon_kinds": [incident_pb2.WEAPON_KIND_OTHER]}, ""),
        ({"min_killed": 1}, "ad"),
        ({"min_injured": 2}, "bd"),
        ({"min_killed": 1, "min_injured": 1}, "d"),
        ({"attribution_statuses": [UNATTRIBUTED_INCIDENT]}, "ce"),
        ({"attribution_statuses": [SUSPECTED_INCIDENT]}, "ad"),  # b has a confirmed one
        ({"attribution_statuses": [CONFIRMED_INCIDENT]}, "b"),
        ({"attribution_statuses": [SUSPECTED_INCIDENT, CONFIRMED_INCIDENT]}, "abd"),
        ({"query": "drug"}, "a"),  # in the description, whatever the case
        ({"query": "metro"}, "a"),  # in the address
        ({"query": "BELGRADE rue"}, "b"),  # every word, in any order
        ({"query": "café TERRACE"}, "b"),
        ({"query": "RÈGLEMENT"}, "d"),
        ({"query": "sainte catherine"}, "d"),
        ({"query": "50%"}, "c"),  # wildcards are plain characters
        ({"query": "%"}, "c"),
        ({"query": "_"}, "e"),
        ({"query": "drug metro"}, "a"),  # one word in each field
        ({"query": "drug belgrade"}, ""),
        ({"query": "   "}, "abcde"),
        ({"police_zone_codes": [MIDI], "weapon_kinds": [HANDGUN], "query": "terrace"}, "b"),
    ]
    wrong = []
    for filters, expected in cases:
        reply = listing(queries, seeded.position, **filters)
        if seeded.letters(reply) != expected:
            wrong.append((filters, expected, seeded.letters(reply)))
    assert not wrong

    # Newest first; d and e occurred at the same instant and are ordered by id.
    reply = listing(queries, seeded.position)
    assert ids(reply) == newest_first(seeded.times)
    assert reply.next_page_token == ""
    assert reply.position >= seeded.position


@BOTH_STORES
def test_a_summary_holds_the_current_state_with_local_time_and_attributions(
    incidents, gangs, queries
):
    seeded = seed(incidents, gangs)
    (summary,) = listing(queries, seeded.position, query="terrace").incidents
    assert summary.incident_id == seeded.ids["b"]
    # 21:30 UTC on Sunday 2 June is 23:30 in Brussels (summer time).
    assert summary.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 2, 21, 30, tzinfo=UTC)
    assert summary.reported_at.ToDatetime(tzinfo=UTC) == REPORTED
    assert (summary.municipality_code, summary.police_zone_code) == (FOREST, MIDI)
    assert (summary.local_day, summary.local_week, summary.local_month, summary.local_year) == (
        "2024-06-02",
        "2024-W22",
        "2024-06",
        "2024",
    )
    assert (summary.local_hour, summary.local_weekday) == (23, 7)
    assert (summary.killed, summary.injured) == (0, 2)
    assert [(w.kind, w.count) for w in summary.weapons] == [(HANDGUN, 1)]
    assert (summary.address, summary.description) == (
        "Rue de Belgrade",
        "Drive-by on a CAFÉ terrace",
    )
    assert summary.drug_nexus  # the builder's default
    assert summary.attribution_status == CONFIRMED_INCIDENT
    assert sorted(
        (a.gang_id, a.confidence, a.status, a.confidence_band) for a in summary.attributions
    ) == sorted(
        [
            (seeded.gang_x, 0.9, CONFIRMED, pb.CONFIDENCE_BAND_HIGH),
            (seeded.gang_y, 0.3, SUSPECTED, pb.CONFIDENCE_BAND_LOW),
        ]
    )
    assert [a.gang_id for a in summary.attributions] == sorted(
        a.gang_id for a in summary.attributions
    )
    assert all(a.attributed_at.ToDatetime(tzinfo=UTC) == REPORTED for a in summary.attributions)
    assert (summary.version, summary.link_count) == (3, 0)
    assert 0 < summary.position <= seeded.position


# --- Paging -------------------------------------------------------------------------------


@BOTH_STORES
def test_paging_yields_every_incident_once_in_order(incidents, queries):
    base = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    times, position = {}, 0
    for n in range(13):
        when = base + timedelta(hours=n // 3)  # three incidents share each instant
        code = (ANDERLECHT, BRUXELLES)[n % 2]
        incident_id, position = report(incidents, code, when)
        times[incident_id] = when

    found, pages = every_page(queries, position, page_size=4)
    assert found == newest_first(times)
    assert pages == 4  # 4 + 4 + 4 + 1

    # With a filter, and a page size that divides the matches: no empty last page.
    in_bruxelles = [i for i in newest_first(times) if list(times).index(i) % 2]
    assert len(in_bruxelles) == 6
    found, pages = every_page(queries, municipality_codes=[BRUXELLES], page_size=3)
    assert (found, pages) == (in_bruxelles, 2)
    found, pages = every_page(queries, municipality_codes=[BRUXELLES], page_size=1)
    assert (found, pages) == (in_bruxelles, 6)

    # The default page size is 50, and 500 is allowed.
    assert ids(listing(queries)) == newest_first(times)
    assert ids(listing(queries, page_size=500)) == newest_first(times)


@BOTH_STORES
def test_writes_between_pages_neither_repeat_nor_skip_incidents(incidents, queries):
    base = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    times, position = {}, 0
    for n in range(6):
        incident_id, position = report(incidents, ANDERLECHT, base + timedelta(days=n))
        times[incident_id] = base + timedelta(days=n)
    first = listing(queries, position, page_size=3)
    assert ids(first) == newest_first(times)[:3]

    # A newer incident lands before the pages read so far, an older one after them.
    newer, _ = report(incidents, ANDERLECHT, base + timedelta(days=30))
    older, position = report(incidents, ANDERLECHT, base - timedelta(days=30))
    rest = listing(queries, position, page_size=10, page_token=first.next_page_token)
    assert ids(rest) == [*newest_first(times)[3:], older]
    assert newer not in ids(rest)
    assert rest.next_page_token == ""


def test_a_page_token_is_bound_to_its_filters(incidents, queries):
    for day in range(1, 5):
        _, position = report(incidents, BRUXELLES, datetime(2024, 3, day, tzinfo=UTC))
    filters = {"municipality_codes": [BRUXELLES, ANDERLECHT], "min_injured": 1}
    first = listing(queries, position, page_size=2, **filters)
    token = first.next_page_token
    assert token

    # The same filters (values in any order), another page size: fine.
    again = listing(
        queries,
        page_size=5,
        page_token=token,
        municipality_codes=[ANDERLECHT, BRUXELLES, BRUXELLES],
        min_injured=1,
    )
    assert len(again.incidents) == 2
    assert not set(ids(again)) & set(ids(first))

    # Other filters: rejected, not silently applied from the middle of another listing.
    for other in (
        {"municipality_codes": [BRUXELLES], "min_injured": 1},
        {**filters, "query": "shots"},
        {**filters, "min_injured": 2},
        {},
    ):
        with pytest.raises(grpc.RpcError) as failure:
            listing(queries, page_token=token, **other)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "other filters" in field_violations(failure.value)["page_token"]

    for forged in ("not-a-token", token[:-3], "e30", "!!!"):
        with pytest.raises(grpc.RpcError) as failure:
            listing(queries, page_token=forged, **filters)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(failure.value)) == {"page_token"}


# --- Rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "fields"),
    [
        ({"page_size": 501}, {"page_size"}),
        ({"page_size": -1}, {"page_size"}),
        ({"min_position": -1}, {"min_position"}),
        ({"min_killed": -1, "min_injured": -2}, {"min_killed", "min_injured"}),
        ({"municipality_codes": [ANDERLECHT, "99999"]}, {"municipality_codes[1]"}),
        ({"police_zone_codes": [ANDERLECHT]}, {"police_zone_codes[0]"}),
        ({"gang_ids": ["gang-x"]}, {"gang_ids[0]"}),
        ({"weapon_kinds": [HANDGUN, 0, 99]}, {"weapon_kinds[1]", "weapon_kinds[2]"}),
        ({"attribution_statuses": [0]}, {"attribution_statuses[0]"}),
        ({"attribution_statuses": [7]}, {"attribution_statuses[0]"}),
        (
            {
                "occurred_from": at("2024-06-01T00:00:00+00:00"),
                "occurred_to": at("2024-06-01T00:00:00+00:00"),
            },
            {"occurred_to"},
        ),
        ({"occurred_from": Timestamp(seconds=-(10**13))}, {"occurred_from"}),
        ({"query": "x" * 201}, {"query"}),
        ({"gang_ids": [str(b.request_id()) for _ in range(101)]}, {"gang_ids"}),
        (
            {
                "page_size": 1000,
                "municipality_codes": [""],
                "weapon_kinds": [0],
                "query": "y" * 300,
            },
            {"page_size", "municipality_codes[0]", "weapon_kinds[0]", "query"},
        ),
    ],
)
def test_invalid_requests_name_every_invalid_field(queries, filters, fields):
    with pytest.raises(grpc.RpcError) as failure:
        listing(queries, **filters)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(failure.value)) == fields


def test_min_position_beyond_the_head_is_out_of_range(server, incidents, queries):
    _, head = report(incidents)
    assert len(listing(queries, head).incidents) == 1
    with pytest.raises(grpc.RpcError) as failure:
        listing(queries, head + 1)
    assert failure.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert set(field_violations(failure.value)) == {"min_position"}


def test_an_empty_model_lists_nothing(queries):
    reply = listing(queries)
    assert (list(reply.incidents), reply.next_page_token, reply.position) == ([], "", 0)


# --- Read your writes and corrections -----------------------------------------------------


def only(queries, position, incident_id):
    (summary,) = [s for s in listing(queries, position).incidents if s.incident_id == incident_id]
    assert summary.version > 0
    return summary


@BOTH_STORES
def test_each_write_is_read_back_with_min_position(incidents, gangs, queries):
    incident_id, position = report(incidents, killed=0, injured=1)
    assert only(queries, position, incident_id).injured == 1
    revised = incidents.ReviseCasualties(
        b.casualties(incident_id, killed=1, injured=0), metadata=ACTOR_METADATA
    ).result
    summary = only(queries, revised.position, incident_id)
    assert (summary.killed, summary.injured, summary.version) == (1, 0, 2)
    assert summary.position == revised.position
    gang = register_gang(gangs)
    attributed = attribute(incidents, incident_id, gang, 0.55, SUSPECTED)
    summary = only(queries, attributed, incident_id)
    assert [(a.gang_id, a.confidence_band) for a in summary.attributions] == [
        (gang, pb.CONFIDENCE_BAND_MEDIUM)
    ]
    other, _ = report(incidents)
    linked = incidents.LinkIncidents(b.link(incident_id, other), metadata=ACTOR_METADATA).result
    assert only(queries, linked.position, incident_id).link_count == 1
    assert only(queries, linked.position, other).link_count == 1


def comparable(summary):
    """What a summary says about the facts (not its id, nor how many events made it)."""
    copy = pb.IncidentSummary()
    copy.CopyFrom(summary)
    for name in ("incident_id", "version", "position", "link_count"):
        copy.ClearField(name)
    return copy


@BOTH_STORES
def test_corrections_are_reflected_exactly(incidents, gangs, queries):
    x, y = register_gang(gangs), register_gang(gangs)
    incident_id, _ = report(
        incidents,
        ANDERLECHT,
        datetime(2024, 5, 31, 8, tzinfo=UTC),
        killed=0,
        injured=2,
        weapons=weapons((RIFLE, 1)),
    )
    attribute(incidents, incident_id, x, 0.6, SUSPECTED)
    attribute(incidents, incident_id, y, 0.9, SUSPECTED)
    incidents.ReviseCasualties(
        b.casualties(incident_id, killed=1, injured=1), metadata=ACTOR_METADATA
    )
    moved_to = incident_pb2.IncidentCorrection(
        municipality_code=BRUXELLES,
        occurred_at=b.ts(datetime(2024, 6, 3, 15, tzinfo=UTC)),
        weapons=weapons((HANDGUN, 2), (SHOTGUN, 1)),
    )
    for path in ("municipality_code", "occurred_at", "weapons"):
        incidents.AmendIncident(
            b.amendment(incident_id, path, correction=moved_to), metadata=ACTOR_METADATA
        )
    attribute(incidents, incident_id, x, 0.85, CONFIRMED)
    last = incidents.RetractAttribution(
        b.retraction(incident_id, y), metadata=ACTOR_METADATA
    ).result.position

    def matches(**filters):
        return incident_id in ids(listing(queries, last, **filters))

    assert not matches(police_zone_codes=[MIDI])
    assert matches(police_zone_codes=[CAPITALE], municipality_codes=[BRUXELLES])
    assert not matches(occurred_to=at("2024-06-01T00:00:00+00:00"))
    assert matches(occurred_from=at("2024-06-03T15:00:00+00:00"))
    assert not matches(weapon_kinds=[RIFLE])
    assert matches(weapon_kinds=[SHOTGUN])
    assert not matches(gang_ids=[y])
    assert matches(gang_ids=[x], attribution_statuses=[CONFIRMED_INCIDENT])
    assert matches(min_killed=1, min_injured=1)
    assert not matches(min_injured=2)

    # The same facts reported from the start give the same summary.
    direct_id, _ = report(
        incidents,
        BRUXELLES,
        datetime(2024, 6, 3, 15, tzinfo=UTC),
        killed=1,
        injured=1,
        weapons=weapons((SHOTGUN, 1), (HANDGUN, 2)),
    )
    position = attribute(incidents, direct_id, x, 0.85, CONFIRMED)
    corrected, direct = only(queries, position, incident_id), only(queries, position, direct_id)
    assert comparable(corrected) == comparable(direct)
    assert (corrected.local_day, corrected.local_hour, corrected.local_weekday) == (
        "2024-06-03",
        17,
        1,
    )
    assert corrected.version == 9


# --- Rebuild equivalence ------------------------------------------------------------------


@BOTH_STORES
def test_the_served_model_equals_one_rebuilt_from_the_log(
    server, incidents, gangs, queries, tmp_path
):
    codes = sorted(BRUSSELS.municipalities)
    gang_ids = [register_gang(gangs) for _ in range(3)]
    created = []
    for n in range(14):
        when = datetime(2023, 12, 30, 23, 30, tzinfo=UTC) + timedelta(days=n * 5, hours=n * 7)
        arms = weapons((HANDGUN, 1 + n % 2)) if n % 3 else weapons((RIFLE, 1), (UNKNOWN, 1))
        incident_id, _ = report(
            incidents, codes[n % 9], when, killed=n % 2, injured=n % 4, weapons=arms
        )
        created.append(incident_id)
    for n, incident_id in enumerate(created[::2]):
        attribute(incidents, incident_id, gang_ids[n % 3], (0.3, 0.6, 0.9)[n % 3], SUSPECTED)
    for n, incident_id in enumerate(created[::4]):
        attribute(incidents, incident_id, gang_ids[n % 3], 0.95, CONFIRMED)
        incidents.ReviseCasualties(
            b.casualties(incident_id, killed=n, injured=1), metadata=ACTOR_METADATA
        )
    incidents.RetractAttribution(b.retraction(created[2], gang_ids[1]), metadata=ACTOR_METADATA)
    incidents.AmendIncident(
        b.amendment(
            created[3],
            "municipality_code",
            "weapons",
            correction=incident_pb2.IncidentCorrection(
                municipality_code=codes[-1], weapons=weapons((SHOTGUN, 2))
            ),
        ),
        metadata=ACTOR_METADATA,
    )
    incidents.LinkIncidents(b.link(created[1], created[5]), metadata=ACTOR_METADATA)
    last = gangs.AddGangAlias(b.alias(gang_ids[0]), metadata=ACTOR_METADATA).result.position

    served, pages = every_page(queries, last, page_size=5)
    assert sorted(served) == sorted(created)
    assert pages == 3

    registry = server.registry
    view = rebuild(
        registry.backend,
        registry.mapper,
        IncidentsProjection(BRUSSELS),
        tmp_path / "rebuilt.sqlite",
        page_size=4,
    )
    try:
        with view.transaction(write=False) as tx:
            rebuilt = list_incidents(tx, IncidentFilter(), after=None, limit=100)
            assert tx.position("incidents") == last
        with server.projections.store.transaction(write=False) as tx:
            live = list_incidents(tx, IncidentFilter(), after=None, limit=100)
    finally:
        view.close()
    assert rebuilt == live
    assert [str(i.state.incident_id) for i in live] == served
    assert sum(i.state.link_count for i in live) == 2
