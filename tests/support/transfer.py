"""Helpers for the export, import and migration tests: a varied log, transfers, read models.

`populate` writes a log with every kind of aggregate and most event types; `export_all` and
`import_in_batches` drive ExportEvents and ImportEvents; `snapshot` reads every aggregate and
every read model of a registry, and `translated` rewrites the log positions in a snapshot
through a map from one log's positions to another's, so that the snapshots of a log and of its
imported copy can be compared whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.message import Message
from incident_registry_client.proto.incidents.v1 import (
    asset_service_pb2_grpc,
    asset_statistics_service_pb2,
    asset_statistics_service_pb2_grpc,
    command_query_service_pb2,
    command_query_service_pb2_grpc,
    command_service_pb2_grpc,
    event_log_service_pb2,
    event_log_service_pb2_grpc,
    gang_service_pb2_grpc,
    incident_pb2,
    incident_query_service_pb2,
    incident_query_service_pb2_grpc,
    incident_service_pb2_grpc,
    statistics_service_pb2,
    statistics_service_pb2_grpc,
    wave_service_pb2,
    wave_service_pb2_grpc,
)

from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA

pb = event_log_service_pb2
stats_pb = statistics_service_pb2
WAIT = 20.0
ANDERLECHT, FOREST, IXELLES, SCHAERBEEK = "21001", "21007", "21009", "21015"
# A Wednesday morning in Brussels: the first of four shootings in three days in Anderlecht.
WEDNESDAY = datetime(2024, 11, 27, 5, 10, tzinfo=UTC)


@dataclass
class Written:
    """What `populate` wrote: aggregate ids by kind."""

    incidents: list[str] = field(default_factory=list)
    gangs: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    head: int = 0


def populate(channel: grpc.Channel) -> Written:
    """Write a varied log: gangs, shootings (four in three days in Anderlecht, historical
    ones), their revisions, corrections, attributions and links, unified commands and an
    asset case from seizure to release."""
    incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
    gangs = gang_service_pb2_grpc.GangServiceStub(channel)
    commands = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
    assets = asset_service_pb2_grpc.AssetRecoveryServiceStub(channel)
    meta = ACTOR_METADATA
    written = Written()

    for _ in range(2):
        gang = gangs.RegisterGang(b.gang(), metadata=meta, timeout=WAIT).result.aggregate_id
        written.gangs.append(gang)
    gangs.AddGangAlias(b.alias(written.gangs[0]), metadata=meta, timeout=WAIT)

    def report(when: datetime, municipality: str, **extra: Any) -> str:
        request = b.shooting(
            occurred_at=b.ts(when),
            reported_at=b.ts(when + timedelta(hours=1)),
            municipality_code=municipality,
            location=None,
            **extra,
        )
        reply = incidents.ReportShooting(request, metadata=meta, timeout=WAIT)
        written.incidents.append(reply.result.aggregate_id)
        return reply.result.aggregate_id

    wave = [
        report(WEDNESDAY + timedelta(hours=h), ANDERLECHT, killed=int(h == 46))
        for h in (0, 26, 27.5, 46)
    ]
    elsewhere = report(WEDNESDAY - timedelta(days=40), IXELLES, injured=3)
    moved = report(WEDNESDAY - timedelta(days=90), FOREST, description="moved later")
    historical = report(
        datetime(2004, 1, 3, 23, 0, tzinfo=UTC),
        SCHAERBEEK,
        occurred_at_precision=incident_pb2.TIME_PRECISION_DAY,
        sources=[],
    )
    incidents.ReviseCasualties(b.casualties(wave[0]), metadata=meta, timeout=WAIT)
    incidents.AmendIncident(
        b.amendment(
            moved,
            "municipality_code",
            "occurred_at",
            correction=incident_pb2.IncidentCorrection(
                municipality_code=SCHAERBEEK,
                occurred_at=b.ts(WEDNESDAY - timedelta(days=90, minutes=-30)),
            ),
        ),
        metadata=meta,
        timeout=WAIT,
    )
    incidents.AmendIncident(b.amendment(elsewhere), metadata=meta, timeout=WAIT)
    first, second = written.gangs
    incidents.AttributeToGang(b.attribution(wave[1], first), metadata=meta, timeout=WAIT)
    incidents.AttributeToGang(
        b.attribution(
            wave[2], second, confidence=0.9, status=incident_pb2.ATTRIBUTION_STATUS_CONFIRMED
        ),
        metadata=meta,
        timeout=WAIT,
    )
    incidents.AttributeToGang(b.attribution(historical, first), metadata=meta, timeout=WAIT)
    incidents.RetractAttribution(b.retraction(historical, first), metadata=meta, timeout=WAIT)
    incidents.LinkIncidents(b.link(wave[2], wave[1]), metadata=meta, timeout=WAIT)

    command = commands.UnifyPoliceCommand(
        b.unify(triggering_incident_ids=wave[:3]), metadata=meta, timeout=WAIT
    ).result.aggregate_id
    commands.EndUnifiedCommand(b.end_command(command), metadata=meta, timeout=WAIT)
    other = commands.UnifyPoliceCommand(
        b.unify(police_zone_codes=[], municipality_codes=[IXELLES]), metadata=meta, timeout=WAIT
    ).result.aggregate_id
    written.commands.extend([command, other])

    case = assets.RecordAssetSeizure(
        b.seizure(gang_id=first, incident_ids=[wave[1]]), metadata=meta, timeout=WAIT
    ).result.aggregate_id
    assets.ConfiscateAssets(b.confiscation(case, 800_000), metadata=meta, timeout=WAIT)
    assets.ReinvestAssets(b.reinvestment(case, 300_000), metadata=meta, timeout=WAIT)
    last = assets.ReleaseAssets(b.release(case, 100_000), metadata=meta, timeout=WAIT)
    written.cases.append(case)
    written.head = last.result.position
    return written


def export_all(
    channel: grpc.Channel, after: int = 0, to: int = 0, batch: int = 0
) -> tuple[list[pb.ExportedEvent], pb.ExportFinished]:
    """Every exported event of a range, and the final message."""
    log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    events: list[pb.ExportedEvent] = []
    finished = None
    request = pb.ExportEventsRequest(after_position=after, to_position=to, max_batch_size=batch)
    for message in log.ExportEvents(request, timeout=WAIT):
        assert finished is None, "nothing follows the finished message"
        if message.HasField("events"):
            events.extend(message.events.events)
        else:
            finished = message.finished
    assert finished is not None
    return events, finished


def import_in_batches(
    channel: grpc.Channel, events: list[pb.ExportedEvent], size: int
) -> list[pb.ImportEventsResponse]:
    """Import the events in order, `size` per call."""
    log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    return [
        log.ImportEvents(pb.ImportEventsRequest(events=events[start : start + size]), timeout=WAIT)
        for start in range(0, len(events), size)
    ]


def head_of(channel: grpc.Channel) -> int:
    """The position of the last event of the log."""
    log = event_log_service_pb2_grpc.EventLogServiceStub(channel)
    return log.GetHead(pb.GetHeadRequest(), timeout=WAIT).position


def settled_head(channel: grpc.Channel) -> int:
    """The head once the waves projection has recorded the waves of the log so far.

    A wave is recorded before the projection's position passes the event that completed it.
    """
    waves = wave_service_pb2_grpc.WaveServiceStub(channel)
    waves.ListWaves(wave_service_pb2.ListWavesRequest(min_position=head_of(channel)), timeout=WAIT)
    return head_of(channel)


def waves_of(events: Iterable[pb.ExportedEvent]) -> list[str]:
    """The stream ids of the WaveDetected events among `events`."""
    return [e.stream_id for e in events if e.event_type == "WaveDetected"]


def position_map(
    source: Iterable[pb.ExportedEvent], target: Iterable[pb.ExportedEvent]
) -> dict[int, int]:
    """Each source position to the target position of the same stream version."""
    where = {(e.stream_id, e.stream_version): e.position for e in target}
    return {e.position: where[(e.stream_id, e.stream_version)] for e in source}


def snapshot(channel: grpc.Channel, written: Written, head: int) -> dict[str, Message]:
    """Every aggregate of `written` and every read model, once they include `head`."""
    incidents = incident_service_pb2_grpc.IncidentServiceStub(channel)
    gangs = gang_service_pb2_grpc.GangServiceStub(channel)
    commands = command_service_pb2_grpc.PoliceCommandServiceStub(channel)
    assets = asset_service_pb2_grpc.AssetRecoveryServiceStub(channel)
    found: dict[str, Message] = {}
    for incident in written.incidents:
        found[f"incident {incident}"] = incidents.GetIncident(
            b.get_incident(incident), timeout=WAIT
        )
    for gang in written.gangs:
        found[f"gang {gang}"] = gangs.GetGang(b.get_gang(gang), timeout=WAIT)
    for command in written.commands:
        found[f"command {command}"] = commands.GetUnifiedCommand(
            b.get_command(command), timeout=WAIT
        )
    for case in written.cases:
        found[f"case {case}"] = assets.GetAssetCase(b.get_case(case), timeout=WAIT)
    found.update(read_models(channel, head))
    return found


def read_models(channel: grpc.Channel, head: int) -> Iterator[tuple[str, Message]]:
    """Every read model's answers to broad questions, once they include `head`."""
    statistics = statistics_service_pb2_grpc.StatisticsServiceStub(channel)
    for area in (stats_pb.AREA_KIND_MUNICIPALITY, stats_pb.AREA_KIND_POLICE_ZONE):
        for period in (stats_pb.PERIOD_KIND_DAY, stats_pb.PERIOD_KIND_ISO_WEEK,
                       stats_pb.PERIOD_KIND_MONTH, stats_pb.PERIOD_KIND_YEAR):  # fmt: skip
            request = stats_pb.GetAreaStatisticsRequest(
                area_kind=area, period_kind=period, min_position=head
            )
            yield f"statistics {area} {period}", statistics.GetAreaStatistics(request, timeout=WAIT)
        breakdown = stats_pb.GetIncidentBreakdownRequest(area_kind=area, min_position=head)
        yield f"breakdown {area}", statistics.GetIncidentBreakdown(breakdown, timeout=WAIT)
    queries = incident_query_service_pb2_grpc.IncidentQueryServiceStub(channel)
    listing = incident_query_service_pb2.ListIncidentsRequest(page_size=500, min_position=head)
    yield "incidents", queries.ListIncidents(listing, timeout=WAIT)
    command_queries = command_query_service_pb2_grpc.CommandQueryServiceStub(channel)
    yield (
        "commands",
        command_queries.ListUnifiedCommands(
            command_query_service_pb2.ListUnifiedCommandsRequest(page_size=500, min_position=head),
            timeout=WAIT,
        ),
    )
    yield (
        "municipality commands",
        command_queries.GetMunicipalityCommands(
            command_query_service_pb2.GetMunicipalityCommandsRequest(min_position=head),
            timeout=WAIT,
        ),
    )
    asset_statistics = asset_statistics_service_pb2_grpc.AssetStatisticsServiceStub(channel)
    groupings = asset_statistics_service_pb2.AssetRecoveryGrouping
    for name, grouping in groupings.items():
        if grouping == groupings.Value("ASSET_RECOVERY_GROUPING_UNSPECIFIED"):
            continue
        by = asset_statistics_service_pb2.GetAssetRecoveryStatisticsRequest(
            group_by=grouping, period_kind=stats_pb.PERIOD_KIND_MONTH, min_position=head
        )
        yield name, asset_statistics.GetAssetRecoveryStatistics(by, timeout=WAIT)
    waves = wave_service_pb2_grpc.WaveServiceStub(channel)
    listing_waves = wave_service_pb2.ListWavesRequest(page_size=500, min_position=head)
    yield "waves", waves.ListWaves(listing_waves, timeout=WAIT)


POSITION_FIELDS = frozenset({"position", "trigger_position", "detected_position"})


def translated(
    found: dict[str, Message], positions: dict[int, int] | None = None
) -> dict[str, Message]:
    """The snapshot with every event position mapped through `positions` (if given); the
    position a read model reflects (a response's own `position`) is cleared."""
    result = {}
    for name, message in found.items():
        copy = type(message)()
        copy.CopyFrom(message)
        if "position" in copy.DESCRIPTOR.fields_by_name:
            copy.ClearField("position")
        if positions is not None:
            _map_positions(copy, positions)
        result[name] = copy
    return result


def _map_positions(message: Message, positions: dict[int, int]) -> None:
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None:
            items = value if descriptor.is_repeated else [value]
            for item in items:
                if isinstance(item, Message):
                    _map_positions(item, positions)
        elif descriptor.name in POSITION_FIELDS:
            setattr(message, descriptor.name, positions[value])


def without_positions(found: dict[str, Message]) -> dict[str, Message]:
    """The snapshot with every position cleared (for logs whose positions do not map)."""
    return translated(found, _Zero())


class _Zero(dict[int, int]):
    def __missing__(self, key: int) -> int:
        return 0
