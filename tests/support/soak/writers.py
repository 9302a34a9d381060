"""The writers: each registers a gang of its own, then writes cycles about new incidents.

A cycle reports a shooting, revises its casualties, attributes it to the writer's gang,
amends it, retracts the attribution and links it to the writer's previous incident. Every
few cycles a report is sent again under the same request id and must come back `replayed`
at the same position; one deliberately invalid report per cycle must be refused
`INVALID_ARGUMENT`; gang aliases are added, assets seized, confiscated and reinvested, and
(the first writer only) a police command is unified and ended. Requests are the valid ones
of tests/support/builders.py with the soak's values.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    asset_pb2,
    asset_service_pb2,
    asset_service_pb2_grpc,
    command_service_pb2_grpc,
    gang_service_pb2,
    gang_service_pb2_grpc,
    incident_pb2,
    incident_service_pb2,
    incident_service_pb2_grpc,
)

from tests.support import builders as b
from tests.support.soak.calls import Caller, Client, Shared
from tests.support.soak.settings import COMMAND_ZONE, MUNICIPALITIES

HANDGUN = incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=1)
TWO_HANDGUNS = incident_pb2.Weapon(kind=incident_pb2.WEAPON_KIND_HANDGUN, count=2)


def shooting(
    rng: random.Random, municipality: str | None = None
) -> incident_service_pb2.ReportShootingRequest:
    """A valid ReportShooting request in one of the soak's municipalities, an hour ago."""
    occurred = b.ago(hours=1, minutes=rng.randrange(600))
    return b.shooting(
        occurred_at=b.ts(occurred),
        reported_at=b.ts(occurred + timedelta(minutes=10)),
        municipality_code=municipality or rng.choice(MUNICIPALITIES),
        weapons=[HANDGUN],
        killed=rng.randrange(2),
        injured=rng.randrange(1, 4),
        description="Soak: shots fired at a selling point",
        location=None,
        assailants_masked=None,
        sources=None,
        external_reference=None,
    )


def seizure() -> asset_service_pb2.RecordAssetSeizureRequest:
    """A seizure of 10 000 EUR in cash, yesterday, in a new case."""
    return b.seizure(
        case_reference=f"SOAK.{uuid.uuid4().hex[:12]}",
        municipality_code=MUNICIPALITIES[0],
        items=[b.cash(1_000_000)],
    )


def gang() -> gang_service_pb2.RegisterGangRequest:
    """A new gang with a unique name."""
    suffix = uuid.uuid4().hex[:8]
    return b.gang(
        name=f"Soak clan {suffix}",
        aliases=[f"Soak {suffix}"],
        territory_municipality_codes=None,
        territory_description=None,
    )


class Writer(Client):
    """One writer: a gang of its own, then cycles of writes about new incidents."""

    def __init__(self, number: int, target: str, shared: Shared, rng: random.Random) -> None:
        super().__init__(target, shared, rng)
        self.number = number

    def run(self) -> None:
        """Write until the run is over."""
        with grpc.insecure_channel(self.target) as channel:
            caller = Caller(channel, self.shared.tally, self.shared.timeout)
            self.incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
            self.gangs = gang_service_pb2_grpc.GangServiceStub(channel)
            self.assets = asset_service_pb2_grpc.AssetRecoveryServiceStub(channel)
            self.commands = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
            registered = self.write(caller, "RegisterGang", self.gangs.RegisterGang, gang())
            if registered is None:
                return
            self.shared.gangs.append(registered.aggregate_id)
            previous = ""
            for cycle in itertools.count():
                if self.shared.stop.is_set():
                    return
                previous = self.cycle(caller, cycle, registered.aggregate_id, previous)

    def write(self, caller: Caller, method: str, invoke: Callable[..., Any], request: Any) -> Any:
        """Make one write; its result (acknowledged in the tally), or None."""
        reply = caller.call(method, invoke, request)
        if reply is None:
            return None
        self.shared.tally.acknowledge(method, reply.result)
        return reply.result

    def cycle(self, caller: Caller, cycle: int, gang_id: str, previous: str) -> str:
        """One incident's life and some other writes; returns the incident's id."""
        request = shooting(self.rng)
        result = self.write(caller, "ReportShooting", self.incidents.ReportShooting, request)
        if result is None or not self.shared.pause():
            return previous
        incident_id: str = result.aggregate_id
        self.shared.incidents.append(incident_id)
        incidents = self.incidents
        steps: list[tuple[str, Callable[..., Any], Any]] = [
            (
                "ReviseCasualties",
                incidents.ReviseCasualties,
                b.casualties(
                    incident_id,
                    killed=self.rng.randrange(3),
                    injured=self.rng.randrange(4),
                    reason="hospital report",
                ),
            ),
            (
                "AttributeToGang",
                incidents.AttributeToGang,
                b.attribution(
                    incident_id,
                    gang_id,
                    confidence=round(self.rng.uniform(0.3, 0.9), 2),
                    basis="territory dispute",
                ),
            ),
            (
                "AmendIncident",
                incidents.AmendIncident,
                b.amendment(
                    incident_id, correction=incident_pb2.IncidentCorrection(weapons=[TWO_HANDGUNS])
                ),
            ),
            (
                "RetractAttribution",
                incidents.RetractAttribution,
                b.retraction(incident_id, gang_id, reason="alibi"),
            ),
        ]
        if previous:
            steps.append(("LinkIncidents", incidents.LinkIncidents, b.link(incident_id, previous)))
        for method, invoke, step in steps:
            self.write(caller, method, invoke, step)
            if not self.shared.pause():
                return incident_id
        self.occasional(caller, cycle, gang_id, request, result)
        return incident_id

    def occasional(self, caller: Caller, cycle: int, gang_id: str, report: Any, first: Any) -> None:
        """Replays, a refused request, aliases, asset cases and commands, every few cycles."""
        if cycle % 2 == 0:
            self.replay(caller, report, first)
        invalid = shooting(self.rng, municipality="99999")
        caller.call(
            "ReportShooting(invalid)",
            self.incidents.ReportShooting,
            invalid,
            expected=grpc.StatusCode.INVALID_ARGUMENT,
        )
        if cycle % 3 == 0:
            self.write(caller, "AddGangAlias", self.gangs.AddGangAlias, b.alias(gang_id))
        if cycle % 4 == 1:
            self.asset_case(caller)
        if self.number == 0 and cycle % 5 == 2:
            self.command(caller)

    def replay(self, caller: Caller, report: Any, first: Any) -> None:
        """Send a report again under its request id: the first answer must come back."""
        reply = caller.call("ReportShooting(retry)", self.incidents.ReportShooting, report)
        if reply is None:
            return
        again = reply.result
        if not again.replayed or (again.aggregate_id, again.position) != (
            first.aggregate_id,
            first.position,
        ):
            self.shared.tally.problem(
                f"retry of {report.request_id} answered {again} instead of a replay of {first}"
            )

    def asset_case(self, caller: Caller) -> None:
        """Seize, confiscate and reinvest in a new case."""
        seized = self.write(caller, "RecordAssetSeizure", self.assets.RecordAssetSeizure, seizure())
        if seized is None:
            return
        case_id = seized.aggregate_id
        self.shared.cases.append(case_id)
        confiscation = b.confiscation(case_id, 600_000)
        self.write(caller, "ConfiscateAssets", self.assets.ConfiscateAssets, confiscation)
        beneficiary = asset_pb2.Beneficiary(
            kind=asset_pb2.BENEFICIARY_KIND_SOCIAL_PROGRAMME, name="Youth sports"
        )
        reinvestment = b.reinvestment(case_id, 200_000, beneficiary=beneficiary)
        self.write(caller, "ReinvestAssets", self.assets.ReinvestAssets, reinvestment)

    def command(self, caller: Caller) -> None:
        """Unify the police command of zone Midi, then end it."""
        unify = b.unify(police_zone_codes=[COMMAND_ZONE], reason="soak")
        unified = self.write(caller, "UnifyPoliceCommand", self.commands.UnifyPoliceCommand, unify)
        if unified is None:
            return
        end = b.end_command(unified.aggregate_id)
        self.write(caller, "EndUnifiedCommand", self.commands.EndUnifiedCommand, end)
