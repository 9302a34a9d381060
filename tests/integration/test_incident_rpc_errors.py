"""IncidentService rejections: each error class, its rich details, and nothing written."""

from __future__ import annotations

from uuid import uuid4

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from incident_registry_client.proto.incidents.v1 import common_pb2, incident_pb2

from tests.integration import checks
from tests.support import builders as b
from tests.support.builders import field_violations
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
        ({"request_id": ""}, "request_id"),
        ({"request_id": "   "}, "request_id"),
        ({"request_id": "x" * 129}, "request_id"),
        ({"expected_version": -1}, "expected_version"),
        ({"occurred_at": None}, "occurred_at"),
        ({"occurred_at": b.ts(b.ago(hours=-2)), "reported_at": None}, "occurred_at"),
        (
            {"occurred_at": b.ts(b.ago(minutes=5)), "reported_at": b.ts(b.ago(hours=1))},
            "occurred_at",
        ),
        ({"reported_at": b.ts(b.ago(hours=-2))}, "reported_at"),
        (
            {"occurred_at_precision": incident_pb2.TIME_PRECISION_UNSPECIFIED},
            "occurred_at_precision",
        ),
        ({"occurred_at_precision": 99}, "occurred_at_precision"),
        ({"municipality_code": ""}, "municipality_code"),
        ({"municipality_code": "99999"}, "municipality_code"),
        ({"location": common_pb2.GeoPoint(latitude=51.2, longitude=4.4)}, "location"),
        ({"location": common_pb2.GeoPoint(latitude=50.85, longitude=4.6)}, "location"),
        ({"location": common_pb2.GeoPoint(latitude=float("nan"), longitude=4.3)}, "location"),
        ({"killed": -1}, "killed"),
        ({"injured": -3}, "injured"),
        ({"assailant_count": -1}, "assailant_count"),
        (
            {"weapons": [incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_SHOTGUN, count=0)]},
            "weapons[0].count",
        ),
        ({"weapons": [incident_pb2.Weapon(count=1)]}, "weapons[0].kind"),
        (
            {"weapons": [incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=1)] * 2},
            "weapons[1]",
        ),
        (
            {"sources": [incident_pb2.Source(kind=incident_pb2.SOURCE_KIND_WITNESS)]},
            "sources[0].name",
        ),
        ({"sources": [incident_pb2.Source(name="neighbour")]}, "sources[0].kind"),
        ({"description": "x" * 10_001}, "description"),
    ],
)
def test_report_shooting_rejects_an_invalid_field_by_name(server, incidents, overrides, field):
    checks.invalid(server, incidents.ReportShooting, b.shooting(**overrides), field)


def test_report_shooting_names_an_invalid_source_time_by_its_path(server, incidents):
    source = incident_pb2.Source(
        kind=incident_pb2.SOURCE_KIND_PRESS, name="Le Soir", retrieved_at=Timestamp(seconds=2**62)
    )
    request = b.shooting(sources=[source])
    checks.invalid(server, incidents.ReportShooting, request, "sources[0].retrieved_at")


def test_report_shooting_lists_every_invalid_field_at_once(server, incidents):
    # Malformed fields are reported together...
    malformed = b.shooting(request_id="", occurred_at=None, occurred_at_precision=0)
    err = checks.rejected(server, incidents.ReportShooting, malformed, INVALID)
    assert set(field_violations(err)) == {"request_id", "occurred_at", "occurred_at_precision"}
    # ...and so are well-formed values that break the rules.
    far = common_pb2.GeoPoint(latitude=48.85, longitude=2.35)
    wrong = b.shooting(municipality_code="0", killed=-1, location=far)
    err = checks.rejected(server, incidents.ReportShooting, wrong, INVALID)
    assert set(field_violations(err)) == {"municipality_code", "killed", "location"}


def test_report_shooting_with_a_nonzero_expected_version_is_aborted(server, incidents):
    checks.version_conflict(
        server, incidents.ReportShooting, b.shooting(expected_version=3), expected=3, actual=0
    )


def test_report_shooting_reusing_a_request_id_for_another_shooting_is_already_exists(
    server, incidents
):
    first = b.shooting()
    checks.request_id_reused(
        server, incidents.ReportShooting, first, b.shooting(request_id=first.request_id, killed=2)
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"incident_id": ""}, "incident_id"),
        ({"incident_id": "not-a-uuid"}, "incident_id"),
        ({"request_id": ""}, "request_id"),
        ({"killed": -1}, "killed"),
        ({"injured": -1}, "injured"),
        ({"reason": " "}, "reason"),
        ({"occurred_at": b.ts(b.ago(hours=-1))}, "occurred_at"),
    ],
)
def test_revise_casualties_rejects_an_invalid_field_by_name(
    server, incidents, incident_id, overrides, field
):
    request = b.casualties(incident_id, **overrides)
    checks.invalid(server, incidents.ReviseCasualties, request, field)


def test_revise_casualties_of_an_unknown_or_non_incident_id_is_not_found(
    server, incidents, gang_id
):
    for missing in (UNKNOWN_ID, gang_id):
        checks.not_found(
            server,
            incidents.ReviseCasualties,
            b.casualties(missing),
            resource_type="incident",
            name=missing,
        )


def test_revise_casualties_conflicts_and_request_reuse(server, incidents, incident_id):
    checks.version_conflict(
        server,
        incidents.ReviseCasualties,
        b.casualties(incident_id, expected_version=0),
        expected=0,
        actual=1,
    )
    first = b.casualties(incident_id)
    reuse = b.casualties(incident_id, request_id=first.request_id, killed=3)
    checks.request_id_reused(server, incidents.ReviseCasualties, first, reuse)


@pytest.mark.parametrize(
    ("paths", "correction", "field"),
    [
        (["bogus"], {}, "update_mask.paths[0]"),
        (["weapons", "incident_id"], {}, "update_mask.paths[1]"),
        (["weapons", "weapons"], {}, "update_mask.paths[1]"),
        ([], {}, "update_mask"),
        (["municipality_code"], {"municipality_code": "12345"}, "correction.municipality_code"),
        (["municipality_code"], {}, "correction.municipality_code"),
        (
            ["location"],
            {"location": common_pb2.GeoPoint(latitude=1, longitude=1)},
            "correction.location",
        ),
        (["occurred_at_precision"], {}, "correction.occurred_at_precision"),
        (["occurred_at"], {"occurred_at": b.ts(b.ago(hours=-3))}, "correction.occurred_at"),
        # The shooting was reported 50 minutes ago: it cannot have happened after that.
        (["occurred_at"], {"occurred_at": b.ts(b.ago(minutes=1))}, "correction.occurred_at"),
        (["assailant_count"], {"assailant_count": -2}, "correction.assailant_count"),
        (
            ["weapons"],
            {"weapons": [incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=-1)]},
            "correction.weapons[0].count",
        ),
    ],
)
def test_amend_incident_rejects_an_invalid_mask_or_correction(
    server, incidents, incident_id, paths, correction, field
):
    request = b.amendment(
        incident_id,
        correction=incident_pb2.IncidentCorrection(**correction),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )
    checks.invalid(server, incidents.AmendIncident, request, field)


def test_amend_incident_names_a_missing_corrected_time_by_its_path(server, incidents, incident_id):
    request = b.amendment(incident_id, "occurred_at", correction=incident_pb2.IncidentCorrection())
    checks.invalid(server, incidents.AmendIncident, request, "correction.occurred_at")


def test_amend_incident_requires_a_reason(server, incidents, incident_id):
    checks.invalid(server, incidents.AmendIncident, b.amendment(incident_id, reason=""), "reason")


def test_amend_incident_not_found_conflict_and_reuse(server, incidents, incident_id):
    checks.not_found(
        server,
        incidents.AmendIncident,
        b.amendment(UNKNOWN_ID),
        resource_type="incident",
        name=UNKNOWN_ID,
    )
    checks.version_conflict(
        server,
        incidents.AmendIncident,
        b.amendment(incident_id, expected_version=7),
        expected=7,
        actual=1,
    )
    first = b.amendment(incident_id, "address")
    reuse = b.amendment(incident_id, "address", "weapons", request_id=first.request_id)
    checks.request_id_reused(server, incidents.AmendIncident, first, reuse)
