"""IncidentService rejections around gangs and links: attribute, retract, link, get."""

from __future__ import annotations

from uuid import uuid4

import grpc
import pytest
from incident_registry_client.proto.incidents.v1 import incident_pb2

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, field_violations
from tests.support.stores import BOTH_STORES

pytestmark = BOTH_STORES

INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNKNOWN_ID = str(uuid4())


@pytest.fixture
def incident_id(incidents) -> str:
    return checks.new_incident(incidents)


@pytest.fixture
def gang_id(gangs) -> str:
    return checks.new_gang(gangs)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"confidence": float("nan")}, "confidence"),
        ({"status": incident_pb2.ATTRIBUTION_STATUS_UNSPECIFIED}, "status"),
        ({"gang_id": "gang-1"}, "gang_id"),
        ({"gang_id": ""}, "gang_id"),
        ({"basis": ""}, "basis"),
    ],
)
def test_attribute_to_gang_rejects_an_invalid_field_by_name(
    server, incidents, incident_id, gang_id, overrides, field
):
    request = b.attribution(incident_id, gang_id, **overrides)
    checks.invalid(server, incidents.AttributeToGang, request, field)


def test_attribute_to_gang_needs_a_registered_gang_and_an_incident(
    server, incidents, incident_id, gang_id
):
    # Another incident's id is not a gang id, nor is a gang id an incident id.
    other = checks.new_incident(incidents)
    for request, kind, name in [
        (b.attribution(incident_id, UNKNOWN_ID), "gang", UNKNOWN_ID),
        (b.attribution(incident_id, other), "gang", other),
        (b.attribution(gang_id, gang_id), "incident", gang_id),
    ]:
        checks.not_found(server, incidents.AttributeToGang, request, resource_type=kind, name=name)


def test_attribute_to_gang_conflict_and_reuse(server, incidents, incident_id, gang_id):
    checks.version_conflict(
        server,
        incidents.AttributeToGang,
        b.attribution(incident_id, gang_id, expected_version=2),
        expected=2,
        actual=1,
    )
    first = b.attribution(incident_id, gang_id)
    reuse = b.attribution(incident_id, gang_id, request_id=first.request_id, confidence=0.1)
    checks.request_id_reused(server, incidents.AttributeToGang, first, reuse)


def test_retracting_an_absent_attribution_fails_its_precondition(
    server, incidents, incident_id, gang_id
):
    checks.precondition(
        server,
        incidents.RetractAttribution,
        b.retraction(incident_id, gang_id),
        rule="attribution_exists",
        subject=f"incident/{incident_id}",
    )
    # Once retracted, a second retraction fails the same way.
    incidents.AttributeToGang(b.attribution(incident_id, gang_id), metadata=ACTOR_METADATA)
    incidents.RetractAttribution(b.retraction(incident_id, gang_id), metadata=ACTOR_METADATA)
    checks.precondition(
        server,
        incidents.RetractAttribution,
        b.retraction(incident_id, gang_id),
        rule="attribution_exists",
        subject=f"incident/{incident_id}",
    )


def test_retract_attribution_invalid_not_found_conflict_and_reuse(
    server, incidents, incident_id, gang_id
):
    retract = incidents.RetractAttribution
    checks.invalid(server, retract, b.retraction(incident_id, gang_id, reason=""), "reason")
    checks.invalid(server, retract, b.retraction(incident_id, "x"), "gang_id")
    checks.not_found(
        server,
        incidents.RetractAttribution,
        b.retraction(UNKNOWN_ID, gang_id),
        resource_type="incident",
        name=UNKNOWN_ID,
    )
    incidents.AttributeToGang(b.attribution(incident_id, gang_id), metadata=ACTOR_METADATA)
    checks.version_conflict(
        server,
        incidents.RetractAttribution,
        b.retraction(incident_id, gang_id, expected_version=1),
        expected=1,
        actual=2,
    )
    first = b.retraction(incident_id, gang_id)
    reuse = b.retraction(incident_id, gang_id, request_id=first.request_id, reason="other")
    checks.request_id_reused(server, incidents.RetractAttribution, first, reuse)


def test_link_incidents_rejections(server, incidents, incident_id):
    other = checks.new_incident(incidents)
    link, unspecified = incidents.LinkIncidents, incident_pb2.LINK_KIND_UNSPECIFIED
    checks.invalid(server, link, b.link(incident_id, incident_id), "related_incident_id")
    checks.invalid(server, link, b.link(incident_id, other, kind=unspecified), "kind")
    checks.invalid(server, link, b.link(incident_id, "1234"), "related_incident_id")
    checks.not_found(
        server,
        incidents.LinkIncidents,
        b.link(incident_id, UNKNOWN_ID),
        resource_type="incident",
        name=UNKNOWN_ID,
    )
    checks.version_conflict(
        server,
        incidents.LinkIncidents,
        b.link(incident_id, other, expected_version=4),
        expected=4,
        actual=1,
    )
    first = b.link(incident_id, other)
    checks.request_id_reused(
        server,
        incidents.LinkIncidents,
        first,
        b.link(incident_id, other, request_id=first.request_id, note="n"),
    )
    # A link is recorded once, from either side.
    for request in (b.link(incident_id, other), b.link(other, incident_id)):
        checks.precondition(
            server,
            incidents.LinkIncidents,
            request,
            rule="link_is_new",
            subject=f"incident/{request.incident_id}",
        )


def test_get_incident_rejects_malformed_and_unknown_ids(server, incidents, gang_id):
    for malformed in ("", "incident-42"):
        err = checks.rejected(server, incidents.GetIncident, b.get_incident(malformed), INVALID)
        assert list(field_violations(err)) == ["incident_id"]
    # An unknown id, and a gang's id used as an incident id, are both NOT_FOUND.
    for missing in (UNKNOWN_ID, gang_id):
        checks.not_found(
            server,
            incidents.GetIncident,
            b.get_incident(missing),
            resource_type="incident",
            name=missing,
        )


def test_a_rejected_request_id_stays_free_for_a_valid_request(server, incidents):
    rejected = b.shooting(municipality_code="00000")
    checks.rejected(server, incidents.ReportShooting, rejected, INVALID)
    retry = b.shooting(request_id=rejected.request_id)
    result = incidents.ReportShooting(retry, metadata=ACTOR_METADATA).result
    checks.written(server, result, version=1)
