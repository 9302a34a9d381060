"""The readers: every query the registry serves, in turn, while the writers write.

A reader gets incidents, gangs and asset cases written earlier, reads histories
(`ReadStream`) and pages of the log (`ReadAll`, `GetHead`), lists incidents, waves, commands
and audit entries, and queries statistics (`GetAreaStatistics`, `GetIncidentBreakdown`,
asset recovery) with read-your-writes `min_position`, and `ListProjections`; an unknown
incident id must be `NOT_FOUND`.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import (
    asset_service_pb2_grpc,
    asset_statistics_service_pb2,
    asset_statistics_service_pb2_grpc,
    audit_service_pb2,
    audit_service_pb2_grpc,
    command_query_service_pb2,
    command_query_service_pb2_grpc,
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    gang_service_pb2_grpc,
    incident_query_service_pb2,
    incident_query_service_pb2_grpc,
    incident_service_pb2_grpc,
    projection_admin_service_pb2,
    projection_admin_service_pb2_grpc,
    statistics_service_pb2,
    statistics_service_pb2_grpc,
    wave_service_pb2,
    wave_service_pb2_grpc,
)

from tests.support import builders as b
from tests.support.soak.calls import Caller, Client
from tests.support.soak.settings import MUNICIPALITIES

Query = tuple[str, Callable[..., Any], Callable[["Reader"], Any]]


def read_stream(stream_id: str) -> event_log_service_pb2.ReadStreamRequest:
    """A page of a stream's history."""
    return event_log_service_pb2.ReadStreamRequest(stream_id=stream_id, limit=50)


def queries(channel: grpc.Channel) -> list[Query]:
    """The read-model queries: name, stub method and a request maker."""
    listing = incident_query_service_pb2_grpc.IncidentQueryServiceStub(channel)
    stats = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
    admin = projection_admin_service_pb2_grpc.ProjectionAdminServiceStub(channel)
    recovery = asset_statistics_service_pb2_grpc.AssetStatisticsServiceStub(channel)
    waves = wave_service_pb2_grpc.WaveServiceStub(channel)
    commands = command_query_service_pb2_grpc.CommandQueryServiceStub(channel)
    audit = audit_service_pb2_grpc.AuditServiceStub(channel)
    stats_pb2 = statistics_service_pb2
    return [
        (
            "ListIncidents",
            listing.ListIncidents,
            lambda r: incident_query_service_pb2.ListIncidentsRequest(
                municipality_codes=[r.pick(MUNICIPALITIES)], page_size=20, min_position=r.settled()
            ),
        ),
        (
            "GetAreaStatistics",
            stats.GetAreaStatistics,
            lambda r: stats_pb2.GetAreaStatisticsRequest(
                area_kind=stats_pb2.AREA_KIND_MUNICIPALITY,
                period_kind=stats_pb2.PERIOD_KIND_MONTH,
                min_position=r.settled(),
            ),
        ),
        (
            "GetIncidentBreakdown",
            stats.GetIncidentBreakdown,
            lambda r: stats_pb2.GetIncidentBreakdownRequest(
                area_kind=stats_pb2.AREA_KIND_POLICE_ZONE, period_kind=stats_pb2.PERIOD_KIND_YEAR
            ),
        ),
        (
            "ListProjections",
            admin.ListProjections,
            lambda r: projection_admin_service_pb2.ListProjectionsRequest(),
        ),
        (
            "GetAssetRecoveryStatistics",
            recovery.GetAssetRecoveryStatistics,
            lambda r: asset_statistics_service_pb2.GetAssetRecoveryStatisticsRequest(
                group_by=asset_statistics_service_pb2.ASSET_RECOVERY_GROUPING_PERIOD,
                period_kind=stats_pb2.PERIOD_KIND_MONTH,
            ),
        ),
        ("ListWaves", waves.ListWaves, lambda r: wave_service_pb2.ListWavesRequest(page_size=20)),
        (
            "ListUnifiedCommands",
            commands.ListUnifiedCommands,
            lambda r: command_query_service_pb2.ListUnifiedCommandsRequest(page_size=20),
        ),
        (
            "ListAuditEntries",
            audit.ListAuditEntries,
            lambda r: audit_service_pb2.ListAuditEntriesRequest(page_size=20),
        ),
    ]


class Reader(Client):
    """One reader: cycles through every query the registry serves."""

    def run(self) -> None:
        """Read until the run is over."""
        with grpc.insecure_channel(self.target) as channel:
            caller = Caller(channel, self.shared.tally, self.shared.timeout)
            for query in itertools.cycle(self.queries(channel)):
                if not self.shared.pause():
                    return
                query(caller)

    def queries(self, channel: grpc.Channel) -> list[Callable[[Caller], None]]:
        """The reader's calls, each a function of a caller."""
        incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
        log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
        gangs = gang_service_pb2_grpc.GangServiceStub(channel)
        assets = asset_service_pb2_grpc.AssetRecoveryServiceStub(channel)
        shared = self.shared
        return [
            self.about(shared.incidents, "GetIncident", incidents.GetIncident, b.get_incident),
            self.about(shared.incidents, "ReadStream", log.ReadStream, read_stream),
            self.about(shared.gangs, "GetGang", gangs.GetGang, b.get_gang),
            self.about(shared.cases, "GetAssetCase", assets.GetAssetCase, b.get_case),
            lambda caller: self.read_all(caller, log),
            *(self.query(name, invoke, request) for name, invoke, request in queries(channel)),
            lambda caller: caller.call(
                "GetIncident(unknown)",
                incidents.GetIncident,
                b.get_incident(str(uuid.uuid4())),
                expected=grpc.StatusCode.NOT_FOUND,
            ),
        ]

    def query(
        self, name: str, invoke: Callable[..., Any], request: Callable[[Reader], Any]
    ) -> Callable[[Caller], None]:
        """A call of `invoke` with a request made afresh each time."""
        return lambda caller: self.discard(caller.call(name, invoke, request(self)))

    def about(
        self,
        ids: deque[str],
        method: str,
        invoke: Callable[..., Any],
        request: Callable[[str], Any],
    ) -> Callable[[Caller], None]:
        """A call of `invoke` about a random id written earlier (none while there is none)."""

        def call(caller: Caller) -> None:
            if ids:
                caller.call(method, invoke, request(self.pick(ids)))

        return call

    @staticmethod
    def discard(_: object) -> None:
        """Ignore a reply (the tally has counted it)."""

    def settled(self) -> int:
        """A position for read-your-writes (see Tally.settled_position)."""
        return self.shared.tally.settled_position()

    def read_all(self, caller: Caller, log: Any) -> None:
        """The head, then a page of the log from a random position before it."""
        head = caller.call("GetHead", log.GetHead, event_log_service_pb2.GetHeadRequest())
        if head is None:
            return
        start = self.rng.randrange(head.position + 1)
        caller.call(
            "ReadAll",
            log.ReadAll,
            event_log_service_pb2.ReadAllRequest(from_position=start, limit=100),
        )
