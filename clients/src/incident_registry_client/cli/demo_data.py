"""The demo's facts: the week of the news story in ../shared/context/ (February 2025).

What the article says: early on Wednesday two masked assailants fired Kalashnikov-style
weapons near the Clemenceau metro station in Anderlecht; on Thursday morning two more
shootings in different parts of the city injured three people; early on Friday a shooting in
Anderlecht was deadly — four shootings in three days, which the authorities attribute to turf
wars between rival drug gangs. Brussels' mayor met the mayors of the surrounding
municipalities, and they decided to temporarily unify the police under a single command,
coordinated with the Brussels public prosecutor. The drug commissioner advocates reinvesting
what is taken from criminals — money, luxury cars — in law enforcement and in rebuilding
society (cleaner streets, better lighting, jobs and education).

What the article does not say is marked as the demo's own: where exactly the Thursday
shootings were (placed in Anderlecht and in Forest, both in police zone Midi) and how the three
injured were spread; the command's area (police zone Midi, where the four shootings were) and
its start; the gangs (it names none: descriptive labels); which gang each shooting is
attributed to; and the asset cases, their amounts and the court decisions (illustrative, the
decisions dated months later, as a court would take them). No real person is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from incident_registry_client import (
    AssetItem,
    AssetKind,
    Beneficiary,
    BeneficiaryKind,
    LinkKind,
    ShootingReport,
    Source,
    SourceKind,
    TimePrecision,
    Weapon,
    WeaponKind,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
ANDERLECHT, FOREST = "21001", "21007"
ZONE_MIDI = "5341"
"""Police zone Midi: Anderlecht, Forest and Saint-Gilles."""
PREFIX = "demo-brussels-2025-02:"
"""Every request id of the demo starts with this: running it again replays every write."""


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A time of 2025 in Brussels."""
    return datetime(2025, month, day, hour, minute, tzinfo=BRUSSELS)


ARTICLE = Source(
    SourceKind.PRESS,
    name="Surge in gang violence in Brussels linked to cocaine trafficking, says drugs czar",
    reference="news story of Friday 7 February 2025 (shared/context)",
)
DEMO_NOTE = "Placement and figures beyond the article are the demo's own."


@dataclass(frozen=True)
class Gang:
    """A gang to register: the article names none, so a descriptive label."""

    key: str
    name: str
    territory: tuple[str, ...]
    territory_description: str
    registered_at: datetime


@dataclass(frozen=True)
class Attribution:
    """A suspected attribution of a shooting to a gang."""

    incident: str
    gang: str
    confidence: float
    basis: str
    at: datetime


@dataclass(frozen=True)
class Case:
    """An asset case: a seizure, then a court's confiscation and reinvestments."""

    key: str
    reference: str
    seized_at: datetime
    gang: str
    incidents: tuple[str, ...]
    items: tuple[AssetItem, ...]
    description: str
    confiscated_cents: int
    confiscated_at: datetime
    court: str
    reinvestments: tuple[tuple[int, Beneficiary, str, datetime], ...] = field(default=())


def _story(key: str, report: ShootingReport) -> tuple[str, ShootingReport]:
    """A shooting of the story, with its fixed request id and the article as its source."""
    return key, replace(report, request_id=PREFIX + key, sources=(ARTICLE,))


SHOOTINGS: tuple[tuple[str, ShootingReport], ...] = (
    _story(
        "wednesday-clemenceau",
        ShootingReport(
            occurred_at=local(2, 5, 6),
            occurred_at_precision=TimePrecision.HOUR,
            reported_at=local(2, 5, 6, 30),
            municipality_code=ANDERLECHT,
            address="Clemenceau metro station, Anderlecht",
            weapons=(Weapon(WeaponKind.ASSAULT_RIFLE, 2),),
            assailant_count=2,
            assailants_masked=True,
            drug_nexus=True,
            description="Two masked assailants opened fire with Kalashnikov-style weapons near "
            "the Clemenceau metro station.",
        ),
    ),
    _story(
        "thursday-anderlecht",
        ShootingReport(
            occurred_at=local(2, 6, 8),
            occurred_at_precision=TimePrecision.HOUR,
            reported_at=local(2, 6, 8, 30),
            municipality_code=ANDERLECHT,
            address="Anderlecht (the article gives no address)",
            weapons=(Weapon(WeaponKind.UNKNOWN, 1),),
            injured=2,
            drug_nexus=True,
            description="First of two shootings on Thursday morning in different parts of the "
            f"city, which injured three people. {DEMO_NOTE}",
        ),
    ),
    _story(
        "thursday-forest",
        ShootingReport(
            occurred_at=local(2, 6, 10),
            occurred_at_precision=TimePrecision.HOUR,
            reported_at=local(2, 6, 10, 30),
            municipality_code=FOREST,
            address="Forest (the article gives no address)",
            weapons=(Weapon(WeaponKind.UNKNOWN, 1),),
            injured=1,
            drug_nexus=True,
            description="Second of two shootings on Thursday morning in different parts of the "
            f"city, which injured three people. {DEMO_NOTE}",
        ),
    ),
    _story(
        "friday-deadly",
        ShootingReport(
            occurred_at=local(2, 7, 5),
            occurred_at_precision=TimePrecision.HOUR,
            reported_at=local(2, 7, 5, 30),
            municipality_code=ANDERLECHT,
            address="Anderlecht (the article gives no address)",
            weapons=(Weapon(WeaponKind.UNKNOWN, 1),),
            killed=1,
            drug_nexus=True,
            description="Deadly shooting early on Friday morning, the fourth in three days.",
        ),
    ),
)

GANGS = (
    Gang(
        "crew-a",
        "Crew A — selling-point gang, Anderlecht (descriptive label)",
        (ANDERLECHT,),
        "cocaine selling points; the article says a hotspot can earn up to €50,000 a day",
        local(2, 7, 12),
    ),
    Gang(
        "crew-b",
        "Crew B — rival gang (descriptive label)",
        (),
        "rival in the turf war over selling points",
        local(2, 7, 12),
    ),
)

TURF_WAR = (
    "Authorities attribute the shootings to turf wars between rival drug gangs (press); "
    "which gang is the demo's own."
)
ATTRIBUTIONS = (
    Attribution("wednesday-clemenceau", "crew-b", 0.6, TURF_WAR, local(2, 7, 13)),
    Attribution("thursday-anderlecht", "crew-a", 0.45, TURF_WAR, local(2, 7, 13)),
    Attribution("friday-deadly", "crew-b", 0.8, TURF_WAR, local(2, 7, 13)),
)
LINKS = tuple(
    (key, "wednesday-clemenceau", LinkKind.SAME_SERIES, "four shootings in three days")
    for key in ("thursday-anderlecht", "thursday-forest", "friday-deadly")
)

COMMAND = {
    "lead_authority": "Single police command agreed by the Brussels mayors",
    "reason": "Four shootings in three days. At an urgent meeting called by the mayor of "
    "Brussels with the mayors of the surrounding municipalities, it was decided to unify the "
    "police temporarily under a single command, coordinated with the Brussels public "
    "prosecutor's office.",
    "police_zone_codes": (ZONE_MIDI,),
    "starts_at": local(2, 7, 14),
    "occurred_at": local(2, 7, 14),
}

COURT = "Brussels criminal court (illustrative)"
CASES = (
    Case(
        "case-crew-a",
        "DEMO/BXL/2025/0001",
        local(2, 8, 9),
        "crew-a",
        ("thursday-anderlecht",),
        (
            AssetItem(AssetKind.CASH, 5_000_000, "banknotes: a day's takings of a hotspot"),
            AssetItem(AssetKind.VEHICLE, 12_000_000, "luxury car"),
            AssetItem(AssetKind.VEHICLE, 8_500_000, "luxury car"),
        ),
        f"Search after the week's shootings. {DEMO_NOTE}",
        20_000_000,
        local(6, 12, 11),
        COURT,
        (
            (
                12_000_000,
                Beneficiary(BeneficiaryKind.LAW_ENFORCEMENT, "Police zone Midi"),
                "reinvested in law enforcement, as the drug commissioner advocates",
                local(9, 15, 10),
            ),
            (
                6_000_000,
                Beneficiary(
                    BeneficiaryKind.SOCIAL_PROGRAMME,
                    "Anderlecht streets, lighting and youth programme",
                ),
                "rebuilding society: cleaner streets, better lighting, jobs and education",
                local(9, 15, 10),
            ),
        ),
    ),
    Case(
        "case-crew-b",
        "DEMO/BXL/2025/0002",
        local(2, 9, 9),
        "crew-b",
        ("friday-deadly",),
        (
            AssetItem(AssetKind.CASH, 1_850_000, "banknotes"),
            AssetItem(AssetKind.VEHICLE, 6_500_000, "luxury car"),
        ),
        f"Second search. {DEMO_NOTE}",
        6_500_000,
        local(7, 3, 11),
        COURT,
        (
            (
                6_500_000,
                Beneficiary(BeneficiaryKind.LAW_ENFORCEMENT, "Brussels public prosecutor's office"),
                "reinvested in law enforcement",
                local(10, 1, 10),
            ),
        ),
    ),
)
