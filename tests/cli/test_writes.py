"""Ad-hoc writes: each command records its event, prints where it landed, and fails clearly."""

from __future__ import annotations

import socket
from uuid import UUID, uuid4

from incident_registry_client import AttributionStatus, WeaponKind

from tests.cli.conftest import invoke

SHOOTING = [
    "report",
    "--occurred-at",
    "2025-02-05T06:00",
    "--precision",
    "hour",
    "--municipality",
    "21001",
    "--address",
    "Clemenceau metro station",
    "--weapon",
    "assault_rifle:2",
    "--assailants",
    "2",
    "--masked",
    "--drug-nexus",
    "--source",
    "press:Brussels Times:https://example.org/story",
]


def test_report_records_the_shooting_in_the_given_time_zone(cli_json, registry):
    written = cli_json(
        "--tz", "Europe/Brussels", "--actor", "analyst-7", *SHOOTING, "--injured", "1"
    )
    assert written["version"] == 1
    assert written["replayed"] is False
    incident = registry.get_incident(incident_id=UUID(written["aggregate_id"])).state
    # 06:00 in Brussels in February is 05:00 UTC.
    assert incident.occurred_at.isoformat() == "2025-02-05T05:00:00+00:00"
    assert incident.weapons[0].kind is WeaponKind.ASSAULT_RIFLE
    assert incident.weapons[0].count == 2
    assert (incident.assailant_count, incident.assailants_masked, incident.injured) == (2, True, 1)
    assert incident.sources[0].reference == "https://example.org/story"
    history = registry.get_incident(incident_id=UUID(written["aggregate_id"])).history
    assert history[0].metadata.actor == "analyst-7"


def test_a_write_repeated_with_its_request_id_is_replayed(cli, cli_json):
    first = cli_json(*SHOOTING, "--request-id", "cli-report-1")
    table = cli(*SHOOTING, "--request-id", "cli-report-1").stdout
    again = cli_json(*SHOOTING, "--request-id", "cli-report-1")
    assert again["replayed"] is True
    assert again["aggregate_id"] == first["aggregate_id"]
    assert "replayed (nothing new written)" in table
    assert first["aggregate_id"] in table


def test_the_registry_s_field_violations_are_printed_with_exit_code_4(cli):
    result = cli("report", "--occurred-at", "2025-02-05T06:00Z", "--municipality", "99999", code=4)
    assert "INVALID_ARGUMENT" in result.stderr
    assert "municipality_code" in result.stderr


def test_bad_option_values_are_usage_errors_before_any_call(cli):
    result = cli("report", "--occurred-at", "tuesday", "--municipality", "21001", code=2)
    assert "ISO 8601" in result.output
    result = cli(
        "report", "--occurred-at", "2025-02-05", "--municipality", "21001", "--weapon", "bazooka",
        code=2,
    )  # fmt: skip
    assert "bazooka" in result.output
    assert "assault_rifle" in result.output


def test_attribution_revision_retraction_and_links(cli_json, registry):
    incident = cli_json(*SHOOTING)["aggregate_id"]
    other = cli_json(*SHOOTING)["aggregate_id"]
    gang = cli_json("register-gang", "Crew A", "--alias", "A", "--territory", "21001")[
        "aggregate_id"
    ]
    cli_json("add-alias", gang, "Crew of the selling point")
    cli_json(
        "attribute", incident, gang, "--confidence", "0.6", "--basis", "press", "--status",
        "confirmed",
    )  # fmt: skip
    cli_json("revise", incident, "--killed", "1", "--injured", "0", "--reason", "died later")
    cli_json("amend", incident, "--reason", "wrong address", "--address", "Rue Wayez")
    cli_json("link", other, incident, "--kind", "retaliation_for", "--note", "next morning")
    retracted = cli_json("retract", incident, gang, "--reason", "no evidence")
    state = registry.get_incident(incident_id=UUID(incident)).state
    assert (state.killed, state.address, state.attributions) == (1, "Rue Wayez", ())
    assert retracted["version"] == 6
    assert registry.get_gang(gang_id=UUID(gang)).state.aliases == ("A", "Crew of the selling point")
    history = registry.get_incident(incident_id=UUID(incident)).history
    attributed = history[1].payload
    assert attributed.status is AttributionStatus.CONFIRMED
    assert registry.get_incident(incident_id=UUID(other)).state.links[0].note == "next morning"


def test_a_stale_expected_version_is_refused_with_exit_code_4(cli, cli_json):
    incident = cli_json(*SHOOTING)["aggregate_id"]
    result = cli(
        "revise", incident, "--killed", "0", "--injured", "2", "--reason", "x",
        "--expected-version", "5", code=4,
    )  # fmt: skip
    assert "ABORTED" in result.stderr


def test_an_unknown_gang_is_not_found_with_exit_code_3(cli, cli_json):
    incident = cli_json(*SHOOTING)["aggregate_id"]
    result = cli("attribute", incident, str(uuid4()), "--confidence", "0.5", "--basis", "x", code=3)
    assert "NOT_FOUND" in result.stderr


def test_police_command_and_asset_recovery_writes(cli_json, registry):
    command = cli_json(
        "unify", "--lead-authority", "Mayor of Brussels", "--reason", "four shootings",
        "--zone", "5341", "--starts-at", "2025-02-07T14:00+01:00",
    )["aggregate_id"]  # fmt: skip
    ended = cli_json("end-command", command, "--reason", "calm again")
    assert ended["version"] == 2
    case = cli_json(
        "seize", "BR/2025/1", "--occurred-at", "2025-02-08T09:00Z", "--municipality", "21001",
        "--item", "cash:50000:banknotes", "--item", "vehicle:120,000.50:luxury car",
    )["aggregate_id"]  # fmt: skip
    cli_json("confiscate", case, "--amount", "100000", "--court", "Brussels", "--decision", "J1")
    cli_json(
        "reinvest", case, "--amount", "60000", "--beneficiary", "Youth programme",
        "--kind", "social_programme",
    )  # fmt: skip
    cli_json("release", case, "--amount", "40000", "--court", "Brussels", "--decision", "J2")
    state = registry.get_asset_case(case_id=UUID(case)).state
    assert state.seized_value_cents == 5_000_000 + 12_000_050
    assert (state.confiscated_value_cents, state.reinvested_value_cents) == (10_000_000, 6_000_000)
    assert state.released_value_cents == 4_000_000
    unified = registry.get_unified_command(command_id=UUID(command)).state
    assert set(unified.municipality_codes) == {"21001", "21007", "21013"}


def test_an_unreachable_registry_exits_with_code_5():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke(f"127.0.0.1:{port}", "--timeout", "1", "get", "gang", str(uuid4()), code=5)
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr
