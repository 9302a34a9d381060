"""Police-command and asset-case histories for the benchmark log (see benchmarks/logbuild.py).

`AreaHistories` makes, through the domain, the writes the PoliceCommands and AssetCases
application services would accept:

- UnifyPoliceCommand: a unified command over a shooting's municipality (alone, with a
  neighbour, or its whole police zone), triggered by that shooting; the write holds the
  command's PoliceCommandUnified and, per municipality, its slot's events (created the first
  time, then assigned), in that order. At most `MAX_ACTIVE_COMMANDS` are active at once and a
  command only takes municipalities no active command holds, as the slots require.
  EndUnifiedCommand ends the oldest one and releases its slots.
- RecordAssetSeizure opening a case (AssetCaseOpened and AssetsSeized in one write), linked
  to a gang most of the time and to recent shootings often; later steps of the case are
  planned at opening: often a confiscation, sometimes a further seizure, then sometimes a
  reinvestment and rarely a release, each within the amounts the domain allows.

An asset case's id derives from its judicial reference (`case_id`), so a copy of a case under
a fresh id must carry a fresh reference: `renamed_reference` gives it, and `reference_json`
the JSON fragment to replace in the AssetCaseOpened state (the only event naming it).
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eventsourcing.persistence import StoredEvent

from service.areas import AreaCatalog
from service.domain.asset_case import AssetCase
from service.domain.base import RegistryAggregate
from service.domain.command import MunicipalityCommandSlot, UnifiedCommand
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.values import AssetItem, AssetKind, Beneficiary, BeneficiaryKind
from service.store.base import PendingWrite
from service.store.transcoding import RegistryMapper

COMMAND_WRITE_SHARE = 0.004  # of commands: unify or end a police command (~1.5% of events)
ASSET_WRITE_SHARE = 0.012  # of commands: a step of an asset case (~2% of events)
MAX_ACTIVE_COMMANDS = 3
ROOM_FOR_ANY_WRITE = 32  # events: no write made here is larger
OPEN_CASES = 2000  # cases with steps still to come, kept for later steps

LEAD_AUTHORITIES = (
    "Procureur du Roi de Bruxelles",
    "Directeur coordonnateur administratif de Bruxelles",
    "Haut fonctionnaire de l'agglomération bruxelloise",
)  # fmt: skip
COMMAND_REASONS = (
    "A series of shootings linked to a conflict between rival drug networks.",
    "Reprisals feared after a fatal shooting; patrols and checks coordinated across zones.",
    "Repeated gunfire around the same housing blocks within a week.",
)  # fmt: skip
END_REASONS = (
    "No further incident for two weeks; zones resume ordinary command.",
    "Main suspects arrested; reinforced presence scaled down.",
    "Planned end of the unified command.",
)  # fmt: skip
COURTS = ("Tribunal correctionnel de Bruxelles", "Cour d'appel de Bruxelles")
BENEFICIARIES = (
    (BeneficiaryKind.LAW_ENFORCEMENT, "Police fédérale — Direction judiciaire Bruxelles"),
    (BeneficiaryKind.LAW_ENFORCEMENT, "Zone de police Bruxelles-Midi"),
    (BeneficiaryKind.SOCIAL_PROGRAMME, "Prévention jeunesse Anderlecht"),
    (BeneficiaryKind.SOCIAL_PROGRAMME, "Maison de quartier Molenbeek"),
)  # fmt: skip
ITEMS = (  # kind, description, smallest and largest value in euros, kg per 1000 euros
    (AssetKind.CASH, "Banknotes found in a hidden compartment", 2_000, 250_000, 0.0),
    (AssetKind.VEHICLE, "Car registered to a front man", 8_000, 90_000, 0.0),
    (AssetKind.DRUGS, "Cannabis resin in vacuum-packed blocks", 5_000, 200_000, 0.2),
    (AssetKind.DRUGS, "Cocaine in one-kilo packages", 35_000, 900_000, 0.03),
    (AssetKind.WEAPON, "Handguns and ammunition", 800, 6_000, 0.0),
    (AssetKind.CRYPTO, "Hardware wallet", 3_000, 400_000, 0.0),
    (AssetKind.REAL_ESTATE, "Apartment bought in cash", 150_000, 600_000, 0.0),
)  # fmt: skip


def reference_json(reference: str) -> str:
    """The fragment naming `reference` in an AssetCaseOpened state (compact JSON)."""
    return '"case_reference":' + json.dumps(reference, ensure_ascii=False)


def renamed_reference(reference: str, copy: int) -> str:
    """The reference of the `copy`-th copy of a case."""
    return f"{reference}/C{copy}"


def reference_of(stored: StoredEvent) -> str:
    """The case reference in an AssetCaseOpened stored event."""
    return str(json.loads(stored.state)["case_reference"])


def renamed_state(state: bytes, reference: str, new_reference: str) -> bytes:
    """An AssetCaseOpened state with its reference replaced."""
    old, new = reference_json(reference).encode(), reference_json(new_reference).encode()
    if old not in state:
        msg = f"no {old!r} in the state of an AssetCaseOpened event"
        raise ValueError(msg)
    return state.replace(old, new)


@dataclass
class _Case:
    """An open asset case and the steps still planned for it."""

    case: AssetCase
    steps: list[str] = field(default_factory=list)


class AreaHistories:
    """Makes unified police commands and asset cases through the domain, write by write."""

    def __init__(
        self,
        catalog: AreaCatalog,
        rng: random.Random,
        now: datetime,
        mapper: RegistryMapper,
        request: Callable[[], AbstractContextManager[str]],
    ) -> None:
        self._catalog = catalog
        self._rng = rng
        self._now = now
        self._mapper = mapper
        self._request = request
        self._slots: dict[str, MunicipalityCommandSlot] = {}
        self._active: deque[UnifiedCommand] = deque()
        self._cases: list[_Case] = []
        self._references = 0

    def command_write(self, recent: Sequence[Incident]) -> PendingWrite:
        """Unify a command over a recent shooting's area, or end the oldest active one."""
        rng = self._rng
        held = {code for command in self._active for code in command.municipality_codes}
        free = [code for code in sorted(self._catalog.municipalities) if code not in held]
        if self._active and (
            len(self._active) >= MAX_ACTIVE_COMMANDS or not free or rng.random() < 0.45
        ):
            return self._end(self._active.popleft())
        trigger = rng.choice(recent) if recent else None
        code = trigger.municipality_code if trigger is not None else rng.choice(free)
        if code not in free:
            code = rng.choice(free)
        zone = self._catalog.zone_of(code)
        zone_codes = self._catalog.police_zones[zone].municipalities
        municipalities: tuple[str, ...] = (code,)
        zones: tuple[str, ...] = ()
        if rng.random() < 0.4 and all(c in free for c in zone_codes):
            municipalities, zones = (), (zone,)
        elif rng.random() < 0.5 and len(free) > 1:
            municipalities = tuple(sorted({code, rng.choice(free)}))
        base = trigger.reported_at if trigger is not None else self._now - timedelta(days=300)
        starts = min(self._now, base + timedelta(hours=rng.randint(2, 48)))
        planned = starts + timedelta(days=rng.randint(7, 30)) if rng.random() < 0.7 else None
        with self._request() as request_id:
            command = UnifiedCommand(
                occurred_at=starts,
                municipality_codes=self._catalog.expand(municipalities, zones),
                police_zone_codes=zones,
                lead_authority=rng.choice(LEAD_AUTHORITIES),
                reason=rng.choice(COMMAND_REASONS),
                starts_at=starts,
                planned_end_at=planned,
                triggering_incident_ids=(trigger.id,) if trigger is not None else (),
            )
            touched: list[tuple[RegistryAggregate, frozenset[str]]] = [(command, frozenset())]
            for municipality in command.municipality_codes:
                slot = self._slots.get(municipality)
                if slot is None:
                    slot = MunicipalityCommandSlot(
                        occurred_at=starts, municipality_code=municipality
                    )
                    self._slots[municipality] = slot
                touched.append((slot, slot.tags()))
                slot.assign(occurred_at=starts, command_id=command.id)
        self._active.append(command)
        return self._pending(request_id, command, touched)

    def _end(self, command: UnifiedCommand) -> PendingWrite:
        ended = min(self._now, command.starts_at + timedelta(days=self._rng.randint(3, 40)))
        with self._request() as request_id:
            touched: list[tuple[RegistryAggregate, frozenset[str]]] = [(command, command.tags())]
            command.end(occurred_at=ended, reason=self._rng.choice(END_REASONS))
            for municipality in command.municipality_codes:
                slot = self._slots[municipality]
                touched.append((slot, slot.tags()))
                slot.release(occurred_at=ended, command_id=command.id)
        return self._pending(request_id, command, touched)

    def asset_write(self, gangs: Sequence[Gang], recent: Sequence[Incident]) -> PendingWrite:
        """Take the next step of an open case, or open a case with a seizure."""
        rng = self._rng
        if self._cases and (len(self._cases) >= OPEN_CASES or rng.random() < 0.55):
            index = rng.randrange(len(self._cases))
            open_case = self._cases[index]
            step = open_case.steps.pop(0)
            if not open_case.steps:
                self._cases[index] = self._cases[-1]
                self._cases.pop()
            return self._step(open_case.case, step, gangs, recent)
        self._references += 1
        seized = self._now - timedelta(days=rng.randint(150, 900), minutes=rng.randint(0, 1439))
        reference = f"BR.{seized.year}.AC.{self._references:06d}"
        with self._request() as request_id:
            case = AssetCase(occurred_at=seized, case_reference=reference)
            self._seize(case, seized, gangs, recent)
        steps = ["seize"] if rng.random() < 0.15 else []
        if rng.random() < 0.65:
            steps.append("confiscate")
            if rng.random() < 0.5:
                steps.append("reinvest")
            if rng.random() < 0.08:
                steps.append("release")
        if steps:
            self._cases.append(_Case(case, steps))
        return self._pending(request_id, case, [(case, frozenset())])

    def _step(
        self, case: AssetCase, step: str, gangs: Sequence[Gang], recent: Sequence[Incident]
    ) -> PendingWrite:
        rng = self._rng
        last = max(
            [s.seized_at for s in case.seizures]
            + [d.decided_at for d in case.confiscations + case.releases]
            + [r.reinvested_at for r in case.reinvestments]
        )
        occurred = min(self._now, last + timedelta(days=rng.randint(20, 200)))
        before = case.tags()
        with self._request() as request_id:
            if step == "seize":
                self._seize(case, occurred, gangs, recent)
            elif step == "confiscate":
                room = case.seized_cents - case.confiscated_cents
                case.confiscate(
                    occurred_at=occurred,
                    amount_cents=max(1, room * rng.randint(40, 100) // 100),
                    court=rng.choice(COURTS),
                    decision_reference=f"{occurred.year}/{rng.randint(1, 99_999):05d}/CONF",
                )
            elif step == "reinvest":
                kind, name = rng.choice(BENEFICIARIES)
                case.reinvest(
                    occurred_at=occurred,
                    amount_cents=max(1, case.available_cents * rng.randint(20, 80) // 100),
                    beneficiary=Beneficiary(kind, name),
                    note="Allocated under the social reuse of confiscated assets scheme.",
                )
            else:
                case.release(
                    occurred_at=occurred,
                    amount_cents=max(1, case.available_cents * rng.randint(10, 50) // 100),
                    court=rng.choice(COURTS),
                    decision_reference=f"{occurred.year}/{rng.randint(1, 99_999):05d}/REL",
                    reason="Part of the seized value was shown to be of lawful origin.",
                )
        return self._pending(request_id, case, [(case, before)])

    def _seize(
        self,
        case: AssetCase,
        occurred: datetime,
        gangs: Sequence[Gang],
        recent: Sequence[Incident],
    ) -> None:
        rng = self._rng
        items = []
        for kind, description, low, high, kg_per_thousand in rng.sample(ITEMS, rng.randint(1, 3)):
            euros = rng.randint(low, high)
            items.append(
                AssetItem(
                    kind=kind,
                    description=description,
                    estimated_value_cents=euros * 100,
                    quantity=rng.randint(1, 4) if kind is AssetKind.WEAPON else 1,
                    weight_kg=round(euros / 1000 * kg_per_thousand, 3),
                )
            )
        linked = rng.sample(list(recent), min(len(recent), rng.randint(1, 2)))
        incidents = tuple(i.id for i in linked) if rng.random() < 0.5 else ()
        code = linked[0].municipality_code if linked else rng.choice(self._catalog_codes())
        case.record_seizure(
            occurred_at=occurred,
            municipality_code=code,
            gang_id=rng.choice(gangs).id if gangs and rng.random() < 0.7 else None,
            incident_ids=incidents,
            items=tuple(items),
            description="Search of premises and vehicles ordered by the investigating judge.",
        )

    def _catalog_codes(self) -> list[str]:
        return sorted(self._catalog.municipalities)

    def _pending(
        self,
        request_id: str,
        primary: RegistryAggregate,
        touched: list[tuple[RegistryAggregate, frozenset[str]]],
    ) -> PendingWrite:
        """The write of one command: the touched aggregates' events in order, each tagged
        with its aggregate's tags before and after (as the application's unit of work does)."""
        events: list[StoredEvent] = []
        tags: list[list[str]] = []
        for aggregate, before in touched:
            pending = aggregate.collect_events()
            aggregate_tags = sorted(before | aggregate.tags())
            for domain_event in pending:
                events.append(self._mapper.to_stored_event(domain_event))
                tags.append(aggregate_tags)
        return PendingWrite(
            request_id=request_id,
            fingerprint=f"fp-{request_id}",
            aggregate_id=primary.id,
            version=primary.version,
            events=events,
            tags=tags,
        )
