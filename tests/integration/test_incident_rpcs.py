"""IncidentService over a real channel: every write lands, and GetIncident tells its story."""

from __future__ import annotations

import json

import pytest
from incident_registry_client.proto.incidents.v1 import incident_pb2

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES


@pytest.fixture
def incident_id(incidents) -> str:
    return checks.new_incident(incidents)


@pytest.fixture
def gang_id(gangs) -> str:
    return checks.new_gang(gangs)


def test_report_shooting_records_the_incident_with_its_police_zone(server, incidents):
    request = b.shooting()
    result = incidents.ReportShooting(request, metadata=ACTOR_METADATA).result
    incident_id = checks.written(server, result, version=1)

    got = incidents.GetIncident(b.get_incident(incident_id))
    incident = got.incident
    # The reported facts come back as sent; the police zone is derived from the catalog.
    assert incident.incident_id == incident_id
    assert incident.version == 1
    assert incident.occurred_at == request.occurred_at
    assert incident.occurred_at_precision == incident_pb2.TIME_PRECISION_MINUTE
    assert incident.reported_at == request.reported_at
    assert (incident.municipality_code, incident.police_zone_code) == ("21001", "5341")
    assert incident.location == request.location
    assert list(incident.weapons) == list(request.weapons)
    assert list(incident.sources) == list(request.sources)
    assert (incident.killed, incident.injured, incident.assailant_count) == (0, 1, 2)
    assert incident.assailants_masked
    assert incident.drug_nexus
    assert incident.external_reference == request.external_reference
    assert incident.recorded_at == incident.updated_at

    # One ShootingReported event, at the position the write returned.
    (event,) = got.history
    payload = checks.envelope(
        event,
        event_type="ShootingReported",
        stream_type="incident",
        stream_id=incident_id,
        stream_version=1,
        request_id=request.request_id,
        payload_field="shooting_reported",
    )
    assert event.position == result.position
    assert payload.police_zone_code == "5341"
    assert payload.occurred_at == request.occurred_at
    assert list(payload.weapons) == list(request.weapons)
    # Business time (an hour ago) precedes recording time, which is the incident's recorded_at.
    assert event.occurred_at == request.occurred_at
    assert event.recorded_at == incident.recorded_at
    assert event.recorded_at.ToDatetime() > event.occurred_at.ToDatetime()
    as_json = json.loads(event.payload_json)
    assert as_json["municipality_code"] == "21001"
    assert as_json["occurred_at_precision"] == "TIME_PRECISION_MINUTE"
    assert as_json["weapons"] == [{"kind": "WEAPON_KIND_ASSAULT_RIFLE", "count": 1}]


def test_revise_casualties_sets_new_totals_as_a_second_event(server, incidents, incident_id):
    died_at = b.ago(minutes=5)
    request = b.casualties(incident_id, occurred_at=b.ts(died_at), expected_version=1)
    result = incidents.ReviseCasualties(request, metadata=ACTOR_METADATA).result
    assert checks.written(server, result, version=2) == incident_id

    got = incidents.GetIncident(b.get_incident(incident_id))
    assert (got.incident.killed, got.incident.injured, got.incident.version) == (1, 0, 2)
    checks.positions_increase(got.history)
    assert [e.event_type for e in got.history] == ["ShootingReported", "CasualtiesRevised"]
    payload = checks.envelope(
        got.history[1],
        event_type="CasualtiesRevised",
        stream_type="incident",
        stream_id=incident_id,
        stream_version=2,
        request_id=request.request_id,
        payload_field="casualties_revised",
    )
    assert (payload.killed, payload.injured, payload.reason) == (1, 0, "victim died in hospital")
    # The given business time is kept apart from the recording time.
    assert got.history[1].occurred_at == b.ts(died_at)
    assert got.history[1].position == result.position
    assert got.incident.updated_at == got.history[1].recorded_at


def test_amend_incident_corrects_only_the_masked_fields(server, incidents, incident_id):
    correction = incident_pb2.IncidentCorrection(
        municipality_code="21004",
        weapons=[incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=2)],
        description="not in the mask",
    )
    # "location" is in the mask but unset in the correction: the coordinate is cleared.
    request = b.amendment(
        incident_id, "municipality_code", "weapons", "location", correction=correction
    )
    result = incidents.AmendIncident(request, metadata=ACTOR_METADATA).result
    checks.written(server, result, version=2)

    incident = incidents.GetIncident(b.get_incident(incident_id)).incident
    assert (incident.municipality_code, incident.police_zone_code) == ("21004", "5339")
    assert [(w.kind, w.count) for w in incident.weapons] == [(incident_pb2.WEAPON_KIND_HANDGUN, 2)]
    assert not incident.HasField("location")
    assert incident.description == "Shots fired at a drug selling point"

    event = incidents.GetIncident(b.get_incident(incident_id)).history[-1]
    payload = checks.envelope(
        event,
        event_type="IncidentAmended",
        stream_type="incident",
        stream_id=incident_id,
        stream_version=2,
        request_id=request.request_id,
        payload_field="incident_amended",
    )
    assert list(payload.update_mask.paths) == ["location", "municipality_code", "weapons"]
    assert payload.police_zone_code == "5339"
    assert payload.reason == "ballistics report"
    assert payload.correction.municipality_code == "21004"
    assert not payload.correction.description


def test_attribute_to_gang_records_and_revises_one_attribution_per_gang(
    server, incidents, incident_id, gang_id
):
    first = b.attribution(incident_id, gang_id)
    incidents.AttributeToGang(first, metadata=ACTOR_METADATA)
    # A second attribution to the same gang revises it rather than adding another.
    second = b.attribution(
        incident_id,
        gang_id,
        confidence=0.95,
        status=incident_pb2.ATTRIBUTION_STATUS_CONFIRMED,
        basis="confession",
    )
    result = incidents.AttributeToGang(second, metadata=ACTOR_METADATA).result
    checks.written(server, result, version=3)

    got = incidents.GetIncident(b.get_incident(incident_id))
    (current,) = got.incident.attributions
    assert (current.gang_id, current.confidence) == (gang_id, 0.95)
    assert current.status == incident_pb2.ATTRIBUTION_STATUS_CONFIRMED
    assert current.basis == "confession"
    assert current.attributed_at == got.history[-1].occurred_at
    checks.positions_increase(got.history)
    payloads = [
        checks.envelope(
            event,
            event_type="AttributedToGang",
            stream_type="incident",
            stream_id=incident_id,
            stream_version=version,
            request_id=request.request_id,
            payload_field="attributed_to_gang",
        )
        for event, version, request in zip(got.history[1:], (2, 3), (first, second), strict=True)
    ]
    assert [(p.gang_id, p.confidence, p.status) for p in payloads] == [
        (gang_id, 0.7, incident_pb2.ATTRIBUTION_STATUS_SUSPECTED),
        (gang_id, 0.95, incident_pb2.ATTRIBUTION_STATUS_CONFIRMED),
    ]
    assert json.loads(got.history[2].payload_json)["confidence"] == 0.95


def test_retract_attribution_withdraws_the_current_attribution(
    server, incidents, incident_id, gang_id
):
    incidents.AttributeToGang(b.attribution(incident_id, gang_id), metadata=ACTOR_METADATA)
    request = b.retraction(incident_id, gang_id, expected_version=2)
    result = incidents.RetractAttribution(request, metadata=ACTOR_METADATA).result
    checks.written(server, result, version=3)

    got = incidents.GetIncident(b.get_incident(incident_id))
    assert not got.incident.attributions
    payload = checks.envelope(
        got.history[-1],
        event_type="AttributionRetracted",
        stream_type="incident",
        stream_id=incident_id,
        stream_version=3,
        request_id=request.request_id,
        payload_field="attribution_retracted",
    )
    assert (payload.gang_id, payload.reason) == (gang_id, "alibi confirmed")


def test_link_incidents_records_the_link_on_both_incidents(server, incidents, incident_id):
    earlier = checks.new_incident(incidents)
    request = b.link(incident_id, earlier)
    result = incidents.LinkIncidents(request, metadata=ACTOR_METADATA).result
    # The result is about incident_id; the write also appended to the related incident.
    assert result.aggregate_id == incident_id
    assert result.version == 2
    assert result.position == checks.head(server)

    this = incidents.GetIncident(b.get_incident(incident_id))
    other = incidents.GetIncident(b.get_incident(earlier))
    assert [(x.related_incident_id, x.kind) for x in this.incident.links] == [
        (earlier, incident_pb2.LINK_KIND_RETALIATION_FOR)
    ]
    # Seen from the other incident the relation is inverted.
    assert [(x.related_incident_id, x.kind) for x in other.incident.links] == [
        (incident_id, incident_pb2.LINK_KIND_RETALIATED_BY)
    ]
    mine = checks.envelope(
        this.history[-1],
        event_type="IncidentLinked",
        stream_type="incident",
        stream_id=incident_id,
        stream_version=2,
        request_id=request.request_id,
        payload_field="incident_linked",
    )
    theirs = checks.envelope(
        other.history[-1],
        event_type="IncidentLinked",
        stream_type="incident",
        stream_id=earlier,
        stream_version=2,
        request_id=request.request_id,
        payload_field="incident_linked",
    )
    assert (mine.related_incident_id, theirs.related_incident_id) == (earlier, incident_id)
    assert theirs.kind == incident_pb2.LINK_KIND_RETALIATED_BY
    assert max(this.history[-1].position, other.history[-1].position) == result.position


def test_get_incident_history_has_one_envelope_per_write_in_order(incidents, incident_id, gang_id):
    incidents.ReviseCasualties(b.casualties(incident_id), metadata=ACTOR_METADATA)
    incidents.AmendIncident(b.amendment(incident_id), metadata=ACTOR_METADATA)
    incidents.AttributeToGang(b.attribution(incident_id, gang_id), metadata=ACTOR_METADATA)
    got = incidents.GetIncident(b.get_incident(incident_id))
    assert got.incident.version == 4
    assert [e.event_type for e in got.history] == [
        "ShootingReported",
        "CasualtiesRevised",
        "IncidentAmended",
        "AttributedToGang",
    ]
    checks.positions_increase(got.history)
    # Event ids are distinct and stable across reads.
    again = incidents.GetIncident(b.get_incident(incident_id))
    assert [e.event_id for e in again.history] == [e.event_id for e in got.history]
    assert len({e.event_id for e in got.history}) == 4


def test_correlation_and_causation_headers_are_recorded_in_the_metadata(incidents):
    request = b.shooting()
    headers = (*ACTOR_METADATA, ("x-correlation-id", "op-bluewave"), ("x-causation-id", "tip-17"))
    result = incidents.ReportShooting(request, metadata=headers).result
    (event,) = incidents.GetIncident(b.get_incident(result.aggregate_id)).history
    assert (event.metadata.correlation_id, event.metadata.causation_id) == ("op-bluewave", "tip-17")
    assert event.metadata.request_id == request.request_id
    # Without the headers both default to the request id.
    plain = b.shooting()
    result = incidents.ReportShooting(plain).result
    (event,) = incidents.GetIncident(b.get_incident(result.aggregate_id)).history
    assert event.metadata.actor == ""
    assert (event.metadata.correlation_id, event.metadata.causation_id) == (plain.request_id,) * 2
