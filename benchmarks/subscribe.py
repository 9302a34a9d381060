"""Subscribe catch-up benchmark: EventLogService.Subscribe versus an in-process raw decode.

Run as `.venv/bin/python benchmarks/subscribe.py [--events 100000] [--batch 500]
[--rss-events 0]`. Steps:

1. Build a log of `--events` realistic events directly in a fresh SQLite file in a temporary
   directory: Gang and Incident aggregates are created in this process through the domain
   (ShootingReported with weapons, sources and a ~200-character description; later
   CasualtiesRevised and AttributedToGang events of recent incidents), turned into stored
   events by `registry_mapper()` and written by `SQLiteEventStore.append`, one PendingWrite
   (unique request id, fingerprint and tags) per command and ~1000 writes per transaction.
2. Raw baseline, in this process: page through the whole log with
   `store.read_page(after=..., limit=--batch)` and decode every stored event with
   `mapper.to_domain_event` (also reported: the same paging without decoding).
3. Start the real server (`python -m service` on that file, INCIDENTS_LOG_LEVEL=warning, a free
   127.0.0.1 port) and, over one grpc.aio channel from this process, subscribe from the start
   until `caught_up` once for each payload format (TYPED, JSON, BOTH) and max_batch_size
   (100, 500, 1000). Each run must receive exactly N events at contiguous positions 1..N in
   batches no larger than asked, carrying the payload forms asked, and caught_up at N.
4. Print a table (mode, batch, events, seconds, events/s, ratio to the raw decode), the target
   "aim ≥ 0.7 times the raw decode" with PASS/MISS for the best configuration and for the
   default one (BOTH, 100), and write everything as JSON to benchmarks/results/subscribe.json.
5. With `--rss-events M` (default 0: off, building 1,000,000 events takes minutes), build a
   second log of M events, then against a fresh server each: subscribe through it from the
   start to caught_up (BOTH, 100), and page through it with ReadAll (limit `--batch`), while
   sampling the SERVER process's VmRSS (every 20 ms) and VmHWM from /proc/<pid>/status;
   report the peaks in MB against the 300 MB bound.

`--py-spy FILE` additionally records the server with `py-spy record --gil -f raw` during one
extra (BOTH, 100) subscription, for a profile of where the time goes.

Exit status: 0 on success, 1 when a run received the wrong events, 2 when the server failed to
start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import grpc
from eventsourcing.persistence import StoredEvent
from grpc_health.v1 import health_pb2, health_pb2_grpc
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb

from service.areas import AreaCatalog, load_catalog
from service.domain.base import RegistryAggregate, recording_metadata
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.values import (
    AttributionStatus,
    GeoPoint,
    Source,
    SourceKind,
    TimePrecision,
    Weapon,
    WeaponKind,
)
from service.store.base import PendingWrite
from service.store.sqlite import SQLiteEventStore
from service.store.transcoding import registry_mapper

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SERVICE = pb.DESCRIPTOR.services_by_name["EventLogService"]
SUBSCRIBE_PATH = f"/{SERVICE.full_name}/Subscribe"
READ_ALL_PATH = f"/{SERVICE.full_name}/ReadAll"

FORMATS: dict[str, pb.PayloadFormat.ValueType] = {
    "TYPED": pb.PAYLOAD_FORMAT_TYPED,
    "JSON": pb.PAYLOAD_FORMAT_JSON,
    "BOTH": pb.PAYLOAD_FORMAT_BOTH,
}
BATCH_SIZES: tuple[int, ...] = (100, 500, 1000)
DEFAULT_CONFIG = ("BOTH", 100)
TARGET_RATIO = 0.7
RSS_BOUND_MB = 300.0
RSS_SAMPLE_SECONDS = 0.02

WRITES_PER_COMMIT = 1000
GANG_COUNT = 40
RECENT_INCIDENTS = 5000
FOLLOW_UP_SHARE = 0.3  # of commands: a later fact about a recent incident (~1.4 events/incident)
WARMUP_EVENTS = 3000
RSS_DOMAIN_EVENTS = 50_000  # the RSS log replays these histories under fresh ids

STARTUP_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 1800.0
STOP_TIMEOUT_S = 10.0
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


class ServerStartError(RuntimeError):
    """The server exited or did not become SERVING in time."""


class CheckError(RuntimeError):
    """A run received events other than exactly positions 1..N in the form asked."""


# --------------------------------------------------------------------------- building the log

STREETS = (
    "Rue de la Loi", "Chaussée de Mons", "Boulevard Lemonnier", "Rue Haute", "Avenue Louise",
    "Chaussée de Gand", "Rue Brogniez", "Place Bara", "Rue de Brabant", "Chaussée d'Helmet",
    "Avenue du Roi", "Rue Ropsy-Chaudron", "Boulevard Léopold II", "Rue Heyvaert",
    "Chaussée de Ninove", "Rue des Palais", "Avenue de la Couronne", "Rue Wayez",
)  # fmt: skip
OPENINGS = (
    "Several shots were fired", "A burst of automatic fire was heard",
    "Two men on a scooter opened fire", "Shots were fired from a passing dark car",
    "An exchange of fire broke out", "A single gunman fired repeatedly",
)  # fmt: skip
SETTINGS = (
    "at a group standing outside a night shop", "towards the entrance of an apartment block",
    "at a parked vehicle", "near a known drug-dealing spot", "in front of a café terrace",
    "at the door of a private house",
)  # fmt: skip
OUTCOMES = (
    "One victim was taken to hospital with leg wounds.", "No one was hit; windows were damaged.",
    "A young man was seriously injured and taken to Saint-Pierre.",
    "Police found casings of two different calibres.", "The assailants fled towards the canal.",
)  # fmt: skip
FOLLOW_UPS = (
    "The prosecutor's office has opened an investigation for attempted murder.",
    "Investigators are looking into a settling of scores between rival groups.",
    "Camera footage from the area is being analysed by the judicial police.",
    "Residents say it is the third incident in the street this month.",
)  # fmt: skip
SOURCE_NAMES = {
    SourceKind.POLICE_REPORT: ("Police Bruxelles-Midi", "Police Bruxelles-Capitale Ixelles"),
    SourceKind.PROSECUTOR: ("Parquet de Bruxelles",),
    SourceKind.PRESS: ("Le Soir", "Bruzz", "La DH", "RTBF", "HLN"),
    SourceKind.WITNESS: ("Anonymous witness",),
    SourceKind.HOSPITAL: ("CHU Saint-Pierre", "Hôpital Érasme"),
}
GANG_NAMES = ("Clan", "Crew", "Family", "Boys", "Brotherhood", "Cartel", "Squad", "Gang")
REVISION_REASONS = (
    "a victim died of their injuries in hospital",
    "a second injured person presented at hospital",
    "the prosecutor corrected the number of victims",
)  # fmt: skip


@dataclass
class BuildStats:
    """How a log was built."""

    events: int
    writes: int
    incidents: int
    gangs: int
    event_types: dict[str, int]
    seconds: float
    events_per_s: float
    file_mb: float
    mean_state_bytes: float
    domain_events: int


class LogBuilder:
    """Creates realistic Gang and Incident histories in-process and appends them in batches."""

    def __init__(self, catalog: AreaCatalog, seed: int) -> None:
        self._catalog = catalog
        self._rng = random.Random(seed)
        self._mapper = registry_mapper()
        self._codes = sorted(catalog.municipalities)
        self._now = datetime.now(UTC).replace(microsecond=0)
        self._run = uuid.uuid4().hex[:8]
        self._sequence = 0

    def build(
        self,
        store: SQLiteEventStore,
        total: int,
        *,
        domain_events: int | None = None,
        progress: bool = False,
    ) -> BuildStats:
        """Append exactly `total` events to `store` (which should be empty).

        The first `domain_events` (default: all) come from the domain; the rest replay those
        histories again and again under fresh aggregate ids and request ids (same payloads,
        so the same decoding cost), which is several times faster.
        """
        started = time.perf_counter()
        counts: dict[str, int] = {}
        state_bytes = 0
        pending: list[PendingWrite] = []
        template: list[PendingWrite] = []
        limit = total if domain_events is None else min(domain_events, total)
        cloning = limit < total
        source: Iterator[PendingWrite] = self._domain_writes(total)
        switched = False
        events = writes = 0
        next_report = 250_000
        while events < total:
            if cloning and not switched and events >= limit:
                source, switched = self._cloned_writes(template), True
            write = next(source)
            if cloning and not switched:
                template.append(write)
            for stored in write.events:
                name = stored.topic.rpartition(".")[2]
                counts[name] = counts.get(name, 0) + 1
                state_bytes += len(stored.state)
            pending.append(write)
            events += len(write.events)
            writes += 1
            if len(pending) == WRITES_PER_COMMIT or events >= total:
                store.append(pending)
                pending = []
            if progress and events >= next_report:
                rate = events / (time.perf_counter() - started)
                print(f"  built {events:,} events ({rate:,.0f} events/s)", flush=True)
                next_report += 250_000
        seconds = time.perf_counter() - started
        return BuildStats(
            events=events,
            writes=writes,
            incidents=counts.get("ShootingReported", 0),
            gangs=counts.get("GangRegistered", 0),
            event_types=dict(sorted(counts.items())),
            seconds=seconds,
            events_per_s=events / seconds,
            file_mb=0.0,
            mean_state_bytes=state_bytes / max(events, 1),
            domain_events=limit,
        )

    def _domain_writes(self, total: int) -> Iterator[PendingWrite]:
        """Yield commands' writes: the gangs first, then new shootings and later facts."""
        rng = self._rng
        gangs: list[Gang] = []
        recent: deque[Incident] = deque(maxlen=RECENT_INCIDENTS)
        while len(gangs) < min(GANG_COUNT, max(1, total // 50)):
            yield self._register_gang(gangs)
        while True:
            if recent and rng.random() < FOLLOW_UP_SHARE:
                yield self._follow_up(rng.choice(recent), gangs)
            else:
                write, incident = self._report_shooting()
                recent.append(incident)
                yield write

    def _cloned_writes(self, template: list[PendingWrite]) -> Iterator[PendingWrite]:
        """Replay the template's incident writes, in order, under fresh ids, round after round."""
        incident_writes = [w for w in template if "Incident." in w.events[0].topic]
        if not incident_writes:
            msg = "the domain-built part of the log has no incident to replay"
            raise ValueError(msg)
        while True:
            fresh: dict[UUID, UUID] = {}
            for write in incident_writes:
                new_id = fresh.get(write.aggregate_id)
                if new_id is None:
                    new_id = fresh[write.aggregate_id] = uuid.uuid4()
                self._sequence += 1
                yield PendingWrite(
                    request_id=f"bench-{self._run}-{self._sequence}",
                    fingerprint=f"clone-{self._sequence}",
                    aggregate_id=new_id,
                    version=write.version,
                    events=[
                        StoredEvent(new_id, e.originator_version, e.topic, e.state)
                        for e in write.events
                    ],
                    tags=write.tags,
                )

    # Each command below is one accepted request: its own request id, metadata and tags.

    def _write(
        self, aggregate: RegistryAggregate, tags_before: frozenset[str], request_id: str
    ) -> PendingWrite:
        collected = aggregate.collect_events()
        tags = sorted(tags_before | aggregate.tags())
        stored: list[StoredEvent] = [self._mapper.to_stored_event(e) for e in collected]
        return PendingWrite(
            request_id=request_id,
            fingerprint=f"fp-{request_id}",
            aggregate_id=aggregate.id,
            version=aggregate.version,
            events=stored,
            tags=[tags] * len(stored),
        )

    @contextlib.contextmanager
    def _request(self) -> Iterator[str]:
        self._sequence += 1
        request_id = f"bench-{self._run}-{self._sequence}"
        metadata = {
            "actor": "benchmark-loader",
            "correlation_id": request_id,
            "causation_id": request_id,
            "request_id": request_id,
        }
        with recording_metadata(metadata):
            yield request_id

    def _register_gang(self, gangs: list[Gang]) -> PendingWrite:
        rng = self._rng
        name = f"{rng.choice(STREETS).split()[-1]} {rng.choice(GANG_NAMES)} {len(gangs) + 1}"
        with self._request() as request_id:
            gang = Gang(
                occurred_at=self._now - timedelta(days=800),
                name=name,
                aliases=(f"{name.split(maxsplit=1)[0][:3].upper()}{len(gangs)}",),
                territory_municipality_codes=tuple(sorted(rng.sample(self._codes, 2))),
                territory_description="Around the stations and the canal-side housing blocks.",
            )
        gangs.append(gang)
        return self._write(gang, frozenset(), request_id)

    def _report_shooting(self) -> tuple[PendingWrite, Incident]:
        rng = self._rng
        occurred = self._now - timedelta(minutes=rng.randint(60, 700 * 24 * 60))
        code = rng.choice(self._codes)
        bounds = self._catalog.bounds
        location = (
            GeoPoint(
                round(rng.uniform(bounds.min_lat, bounds.max_lat), 6),
                round(rng.uniform(bounds.min_lon, bounds.max_lon), 6),
            )
            if rng.random() < 0.8
            else None
        )
        kinds = rng.sample((WeaponKind.HANDGUN, WeaponKind.ASSAULT_RIFLE, WeaponKind.SHOTGUN), 2)
        weapons = tuple(Weapon(k, rng.randint(1, 3)) for k in kinds[: rng.randint(1, 2)])
        sources = tuple(self._source(occurred) for _ in range(rng.randint(1, 3)))
        with self._request() as request_id:
            incident = Incident(
                occurred_at=occurred,
                occurred_at_precision=rng.choice((TimePrecision.MINUTE, TimePrecision.HOUR)),
                reported_at=occurred + timedelta(minutes=rng.randint(5, 600)),
                municipality_code=code,
                police_zone_code=self._catalog.zone_of(code),
                address=f"{rng.choice(STREETS)} {rng.randint(1, 240)}",
                location=location,
                weapons=weapons,
                assailant_count=rng.randint(1, 4),
                assailants_masked=rng.random() < 0.6,
                killed=int(rng.random() < 0.1),
                injured=rng.randint(0, 3),
                drug_nexus=rng.random() < 0.5,
                description=self._description(),
                sources=sources,
                external_reference=f"BR.{occurred.year}.{rng.randint(1, 999_999):06d}",
            )
        return self._write(incident, frozenset(), request_id), incident

    def _follow_up(self, incident: Incident, gangs: list[Gang]) -> PendingWrite:
        rng = self._rng
        before = incident.tags()
        occurred = min(self._now, incident.reported_at + timedelta(hours=rng.randint(1, 400)))
        with self._request() as request_id:
            if rng.random() < 0.55:
                incident.revise_casualties(
                    occurred_at=occurred,
                    killed=incident.killed + int(rng.random() < 0.5),
                    injured=incident.injured + 1,
                    reason=rng.choice(REVISION_REASONS),
                )
            else:
                incident.attribute_to_gang(
                    occurred_at=occurred,
                    gang_id=rng.choice(gangs).id,
                    confidence=round(rng.uniform(0.3, 0.95), 2),
                    status=rng.choice((AttributionStatus.SUSPECTED, AttributionStatus.CONFIRMED)),
                    basis="Territory, modus operandi and intelligence from an informant.",
                )
        return self._write(incident, before, request_id)

    def _source(self, occurred: datetime) -> Source:
        rng = self._rng
        kind = rng.choice(tuple(SOURCE_NAMES))
        name = rng.choice(SOURCE_NAMES[kind])
        if kind is SourceKind.PRESS:
            reference = f"https://news.example/{occurred:%Y/%m/%d}/shooting-{rng.randint(1, 9999)}"
        else:
            reference = f"PV {rng.randint(10_000, 99_999)}/{occurred:%y}"
        retrieved = occurred + timedelta(hours=rng.randint(1, 48)) if rng.random() < 0.7 else None
        return Source(kind=kind, name=name, reference=reference, retrieved_at=retrieved)

    def _description(self) -> str:
        rng = self._rng
        text = (
            f"{rng.choice(OPENINGS)} {rng.choice(SETTINGS)}. {rng.choice(OUTCOMES)} "
            f"Witnesses counted {rng.randint(2, 15)} shots. {rng.choice(FOLLOW_UPS)}"
        )
        return text[:200].rstrip() if len(text) > 200 else text.ljust(180, ".")


def build_log(
    path: Path,
    total: int,
    seed: int,
    *,
    domain_events: int | None = None,
    progress: bool = False,
) -> BuildStats:
    """Create a fresh SQLite log of `total` events at `path` (see LogBuilder.build)."""
    store = SQLiteEventStore(path, synchronous="NORMAL")
    try:
        builder = LogBuilder(load_catalog("brussels"), seed)
        stats = builder.build(store, total, domain_events=domain_events, progress=progress)
    finally:
        store.close()
    stats.file_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    return stats


# ------------------------------------------------------------------------------- raw baseline


@dataclass
class RunResult:
    """One measured pass through the log."""

    mode: str
    batch: int
    events: int
    seconds: float
    events_per_s: float
    messages: int = 0
    megabytes: float = 0.0
    max_message_kb: float = 0.0
    ratio: float = 0.0


def raw_pass(path: Path, page_size: int, *, decode: bool) -> RunResult:
    """Page through the whole log in-process, decoding every event when `decode`."""
    store = SQLiteEventStore(path)
    mapper = registry_mapper()
    to_domain_event = mapper.to_domain_event
    try:
        started = time.perf_counter()
        after = count = pages = 0
        while True:
            notifications = store.read_page(after=after, limit=page_size).notifications
            if not notifications:
                break
            if decode:
                decoded = [(n.id, to_domain_event(n)) for n in notifications]
                assert len(decoded) == len(notifications)
            count += len(notifications)
            pages += 1
            after = notifications[-1].id
        seconds = time.perf_counter() - started
    finally:
        store.close()
    mode = "raw decode" if decode else "raw read"
    return RunResult(mode, page_size, count, seconds, count / seconds, messages=pages)


# ------------------------------------------------------------------------------------- server


@dataclass
class ServerProcess:
    """A started `python -m service` and the file its output goes to."""

    process: subprocess.Popen[bytes]
    target: str
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines the server wrote."""
        self.log_file.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise ServerStartError when the process has exited."""
        code = self.process.poll()
        if code is not None:
            msg = f"server exited with status {code}:\n{self.log_tail()}"
            raise ServerStartError(msg)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after a grace period)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self.log_file.close()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(sqlite_path: Path, workdir: Path, name: str) -> ServerProcess:
    """Start `python -m service` on `sqlite_path`, listening on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "INCIDENTS_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "INCIDENTS_SQLITE_PATH": str(sqlite_path),
        "INCIDENTS_LOG_LEVEL": "warning",
        "INCIDENTS_LOG_FORMAT": "json",
        "INCIDENTS_SHUTDOWN_GRACE_SECONDS": "1",
    }
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=log_file,
    )
    return ServerProcess(process, f"127.0.0.1:{port}", log_path, log_file)


async def wait_ready(server: ServerProcess) -> None:
    """Poll the health service until EventLogService is SERVING."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    request = health_pb2.HealthCheckRequest(service=SERVICE.full_name)
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            server.check_alive()
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(request, timeout=1.0)  # type: ignore[attr-defined]
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    server.check_alive()
    msg = f"server not SERVING after {STARTUP_TIMEOUT_S:.0f} s:\n{server.log_tail()}"
    raise ServerStartError(msg)


# ---------------------------------------------------------------------------------- Subscribe


def _check_forms(envelope: Any, mode: str) -> None:
    typed = envelope.WhichOneof("payload") is not None
    as_json = bool(envelope.payload_json)
    wanted = {"TYPED": (True, False), "JSON": (False, True), "BOTH": (True, True)}[mode]
    if (typed, as_json) != wanted:
        msg = f"{mode}: event {envelope.position} has typed={typed}, json={as_json}"
        raise CheckError(msg)


async def subscribe_pass(
    channel: grpc.aio.Channel, mode: str, batch: int, expected: int, *, stop_after: int = 0
) -> RunResult:
    """Subscribe from the start until caught_up; check positions 1..expected arrive in order.

    With `stop_after`, stop once that many events arrived (a warm-up; nothing is checked
    beyond order).
    """
    call: grpc.aio.UnaryStreamMultiCallable[pb.SubscribeRequest, bytes] = channel.unary_stream(
        SUBSCRIBE_PATH,
        request_serializer=pb.SubscribeRequest.SerializeToString,
        response_deserializer=None,
    )
    request = pb.SubscribeRequest(
        from_start=True, max_batch_size=batch, payload_format=FORMATS[mode]
    )
    parse = pb.SubscribeResponse.FromString
    next_position = 1
    messages = total_bytes = largest = 0
    caught_up: int | None = None
    started = time.perf_counter()
    stream = call(request, timeout=RUN_TIMEOUT_S)
    try:
        async for raw in stream:
            size = len(raw)
            messages += 1
            total_bytes += size
            largest = max(largest, size)
            response = parse(raw)
            kind = response.WhichOneof("message")
            if kind == "events":
                events = response.events.events
                if not 0 < len(events) <= batch:
                    msg = f"{mode}/{batch}: a batch of {len(events)} events"
                    raise CheckError(msg)
                positions = [e.position for e in events]
                if positions != list(range(next_position, next_position + len(events))):
                    msg = (
                        f"{mode}/{batch}: expected position {next_position}, "
                        f"got {positions[0]}..{positions[-1]} ({len(events)} events)"
                    )
                    raise CheckError(msg)
                if next_position == 1 or len(events) < batch:
                    _check_forms(events[0], mode)
                next_position += len(events)
                if stop_after and next_position > stop_after:
                    break
            elif kind == "caught_up":
                caught_up = response.caught_up.position
                break
            elif kind == "fell_behind":
                msg = f"{mode}/{batch}: fell_behind during catch-up: {response.fell_behind}"
                raise CheckError(msg)
        seconds = time.perf_counter() - started
    finally:
        stream.cancel()
    count = next_position - 1
    if not stop_after and (count != expected or caught_up != expected):
        msg = f"{mode}/{batch}: received {count} events, caught_up at {caught_up}, not {expected}"
        raise CheckError(msg)
    return RunResult(
        mode,
        batch,
        count,
        seconds,
        count / seconds,
        messages=messages,
        megabytes=total_bytes / 1e6,
        max_message_kb=largest / 1e3,
    )


async def read_all_pass(channel: grpc.aio.Channel, limit: int, expected: int) -> RunResult:
    """Page through the log with ReadAll (BOTH forms); check positions 1..expected."""
    call: grpc.aio.UnaryUnaryMultiCallable[pb.ReadAllRequest, bytes] = channel.unary_unary(
        READ_ALL_PATH,
        request_serializer=pb.ReadAllRequest.SerializeToString,
        response_deserializer=None,
    )
    parse = pb.ReadAllResponse.FromString
    next_position = 1
    from_position = pages = total_bytes = largest = 0
    started = time.perf_counter()
    while True:
        request = pb.ReadAllRequest(
            from_position=from_position, limit=limit, payload_format=pb.PAYLOAD_FORMAT_BOTH
        )
        raw = await call(request, timeout=60.0)
        pages += 1
        total_bytes += len(raw)
        largest = max(largest, len(raw))
        reply = parse(raw)
        positions = [e.position for e in reply.events]
        if positions != list(range(next_position, next_position + len(positions))):
            msg = f"ReadAll: expected position {next_position} after {from_position}"
            raise CheckError(msg)
        next_position += len(positions)
        if not reply.next_position:
            break
        from_position = reply.next_position
    seconds = time.perf_counter() - started
    count = next_position - 1
    if count != expected:
        msg = f"ReadAll: read {count} events, not {expected}"
        raise CheckError(msg)
    return RunResult(
        "ReadAll",
        limit,
        count,
        seconds,
        count / seconds,
        messages=pages,
        megabytes=total_bytes / 1e6,
        max_message_kb=largest / 1e3,
    )


async def subscribe_matrix(
    server: ServerProcess, expected: int, py_spy: Path | None
) -> tuple[list[RunResult], str]:
    """Warm up, then run every (batch, format) subscription, then the optional profile."""
    await wait_ready(server)
    results: list[RunResult] = []
    profile_note = ""
    async with grpc.aio.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        await subscribe_pass(
            channel, "BOTH", 100, expected, stop_after=min(WARMUP_EVENTS, expected)
        )
        for batch in BATCH_SIZES:
            for mode in FORMATS:
                result = await subscribe_pass(channel, mode, batch, expected)
                print(
                    f"  Subscribe {mode:<5} batch {batch:>4}: {result.events_per_s:9,.0f} events/s"
                    f" ({result.seconds:.2f} s, {result.messages} messages, "
                    f"{result.megabytes:.1f} MB, largest {result.max_message_kb:.0f} kB)",
                    flush=True,
                )
                results.append(result)
        if py_spy is not None:
            profile_note = await profiled_pass(channel, server, expected, py_spy)
    return results, profile_note


async def profiled_pass(
    channel: grpc.aio.Channel, server: ServerProcess, expected: int, output: Path
) -> str:
    """Run one (BOTH, 100) subscription while py-spy records the server."""
    py_spy = Path(sys.executable).with_name("py-spy")
    recorder = subprocess.Popen(
        [
            *(str(py_spy), "record", "--gil", "--rate", "200", "--pid", str(server.pid)),
            *("--format", "raw", "--output", str(output), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.sleep(1.0)  # py-spy attaches
        result = await subscribe_pass(channel, *DEFAULT_CONFIG, expected)
    finally:
        recorder.send_signal(signal.SIGINT)
        _, err = recorder.communicate(timeout=60)
    note = (
        f"py-spy profile of a (BOTH, 100) subscription ({result.events_per_s:,.0f} events/s "
        f"under the profiler) written to {output}"
    )
    if recorder.returncode not in (0, -signal.SIGINT):
        note += f"; py-spy exit {recorder.returncode}: {err.decode(errors='replace')[-300:]}"
    return note


# ---------------------------------------------------------------------------------------- RSS


@dataclass
class RssResult:
    """Server memory while one pass went through the whole log."""

    mode: str
    events: int
    seconds: float
    events_per_s: float
    rss_before_mb: float
    peak_rss_mb: float
    hwm_mb: float
    bound_mb: float = RSS_BOUND_MB
    within_bound: bool = False
    samples: int = 0


def _proc_status(pid: int) -> dict[str, float]:
    values: dict[str, float] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    return values


class RssSampler:
    """Samples a process's VmRSS in a thread, keeping the maximum."""

    def __init__(self, pid: int, interval: float = RSS_SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        rss = _proc_status(self.pid).get("VmRSS", 0.0)
        self.peak = max(self.peak, rss)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)


async def rss_pass(
    server: ServerProcess, mode: str, run: Callable[[grpc.aio.Channel], Any]
) -> RssResult:
    """Run one pass through the log against a fresh server, sampling the server's RSS."""
    await wait_ready(server)
    async with grpc.aio.insecure_channel(server.target, options=CHANNEL_OPTIONS) as channel:
        before = _proc_status(server.pid).get("VmRSS", 0.0)
        with RssSampler(server.pid) as sampler:
            result: RunResult = await run(channel)
        hwm = _proc_status(server.pid).get("VmHWM", 0.0)
    peak = max(sampler.peak, hwm)
    return RssResult(
        mode=mode,
        events=result.events,
        seconds=result.seconds,
        events_per_s=result.events_per_s,
        rss_before_mb=before,
        peak_rss_mb=sampler.peak,
        hwm_mb=hwm,
        within_bound=peak <= RSS_BOUND_MB,
        samples=sampler.samples,
    )


def rss_benchmark(workdir: Path, total: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build a log of `total` events, then measure server RSS for Subscribe and ReadAll."""
    path = workdir / "rss.sqlite"
    print(f"\nbuilding a {total:,}-event log for the RSS runs ...", flush=True)
    stats = build_log(path, total, args.seed + 1, domain_events=RSS_DOMAIN_EVENTS, progress=True)
    print(
        f"  {stats.events:,} events in {stats.seconds:.1f} s "
        f"({stats.events_per_s:,.0f} events/s), {stats.file_mb:.0f} MB",
        flush=True,
    )
    passes: list[tuple[str, Callable[[grpc.aio.Channel], Any]]] = [
        (
            f"Subscribe {DEFAULT_CONFIG[0]} {DEFAULT_CONFIG[1]}",
            lambda ch: subscribe_pass(ch, *DEFAULT_CONFIG, total),
        ),
        (f"ReadAll BOTH {args.batch}", lambda ch: read_all_pass(ch, args.batch, total)),
    ]
    results: list[RssResult] = []
    for index, (mode, run) in enumerate(passes):
        server = start_server(path, workdir, f"rss-server-{index}")
        try:
            result = asyncio.run(rss_pass(server, mode, run))
        finally:
            server.stop()
        print(
            f"  {mode}: {result.events_per_s:,.0f} events/s in {result.seconds:.1f} s; server RSS "
            f"{result.rss_before_mb:.0f} MB before, peak {result.peak_rss_mb:.0f} MB "
            f"(VmHWM {result.hwm_mb:.0f} MB)",
            flush=True,
        )
        results.append(result)
    return {"build": asdict(stats), "passes": [asdict(r) for r in results]}


# ------------------------------------------------------------------------------------ report


def summarize(raw: RunResult, runs: list[RunResult]) -> list[dict[str, Any]]:
    """Set each run's ratio to the raw decode; return the targets with their verdicts."""
    for run in runs:
        run.ratio = run.events_per_s / raw.events_per_s
    best = max(runs, key=lambda r: r.events_per_s)
    default = next(r for r in runs if (r.mode, r.batch) == DEFAULT_CONFIG)
    name = f"aim ≥ {TARGET_RATIO}× raw decode"  # noqa: RUF001
    return [
        {
            "name": f"{name}, best ({best.mode}, {best.batch})",
            "value": round(best.ratio, 3),
            "pass": best.ratio >= TARGET_RATIO,
        },
        {
            "name": f"{name}, default ({default.mode}, {default.batch})",
            "value": round(default.ratio, 3),
            "pass": default.ratio >= TARGET_RATIO,
        },
    ]


def print_report(
    stats: BuildStats,
    raws: list[RunResult],
    runs: list[RunResult],
    targets: list[dict[str, Any]],
    rss: dict[str, Any] | None,
) -> None:
    """Print the table, the targets and the RSS results."""
    header = f"{'mode':<11}{'batch':>6}{'events':>10}{'seconds':>9}{'events/s':>11}{'ratio':>8}"
    print(
        f"\nlog: {stats.events:,} events ({stats.incidents:,} incidents, {stats.gangs} gangs; "
        f"{', '.join(f'{k} {v:,}' for k, v in stats.event_types.items())}), "
        f"mean stored state {stats.mean_state_bytes:.0f} B"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in [*raws, *runs]:
        ratio = f"{r.ratio:.2f}×" if r.ratio else "-"  # noqa: RUF001
        print(
            f"{r.mode:<11}{r.batch:>6}{r.events:>10,}{r.seconds:>9.2f}"
            f"{r.events_per_s:>11,.0f}{ratio:>8}"
        )
    print()
    for target in targets:
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"  {verdict}  {target['name']} (measured {target['value']})")
    if rss:
        print()
        for p in rss["passes"]:
            verdict = "PASS" if p["within_bound"] else "MISS"
            print(
                f"  {verdict}  server peak RSS ≤ {RSS_BOUND_MB:.0f} MB, {p['mode']} through "
                f"{p['events']:,} events (peak VmRSS {p['peak_rss_mb']:.0f} MB, "
                f"VmHWM {p['hwm_mb']:.0f} MB)"
            )


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the results document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Subscribe catch-up throughput versus an in-process read-and-decode."
    )
    parser.add_argument("--events", type=int, default=100_000, help="log size (100000)")
    parser.add_argument(
        "--batch",
        type=int,
        default=500,
        help="page size of the raw baseline read and of the RSS ReadAll loop, 1-1000 (500, "
        "the server's own page size)",
    )
    parser.add_argument(
        "--rss-events",
        type=int,
        default=0,
        help="also build a log this large and measure server RSS through it (0: off)",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the log")
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="record the server with py-spy to this file"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "subscribe.json", help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.rss_events < 0 or not 1 <= args.batch <= 1000:
        parser.error("--events must be positive, --rss-events not negative, --batch 1-1000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the log, measure the baseline and the subscriptions, report; stop the server."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks still stop the server.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    rss: dict[str, Any] | None = None
    profile_note = ""
    with tempfile.TemporaryDirectory(prefix="incidents-subscribe-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "bench.sqlite"
        try:
            print(f"building a {args.events:,}-event log in {path} ...", flush=True)
            stats = build_log(path, args.events, args.seed)
            print(
                f"  {stats.events:,} events ({stats.writes:,} writes) in {stats.seconds:.1f} s "
                f"({stats.events_per_s:,.0f} events/s), {stats.file_mb:.0f} MB",
                flush=True,
            )
            raws = [
                raw_pass(path, args.batch, decode=False),
                raw_pass(path, args.batch, decode=True),
            ]
            raw = raws[1]
            print(
                f"  raw read {raws[0].events_per_s:,.0f} events/s, "
                f"raw decode {raw.events_per_s:,.0f} events/s",
                flush=True,
            )
            server = start_server(path, workdir, "server")
            print(f"server {server.target} pid {server.pid}", flush=True)
            try:
                runs, profile_note = asyncio.run(subscribe_matrix(server, args.events, args.py_spy))
            finally:
                server.stop()
            if args.rss_events:
                rss = rss_benchmark(workdir, args.rss_events, args)
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CheckError as err:
            print(f"error: wrong events received: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; server stopped", file=sys.stderr)
            return 130
    targets = summarize(raw, runs)
    print_report(stats, raws, runs, targets, rss)
    if profile_note:
        print(f"\n{profile_note}")
    total_seconds = time.perf_counter() - started
    document: dict[str, Any] = {
        "benchmark": "subscribe",
        "method": SUBSCRIBE_PATH,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(total_seconds, 1),
        "events": args.events,
        "raw_page_size": args.batch,
        "server_log_level": "warning",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpc": grpc.__version__,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "build": asdict(stats),
        "raw": [asdict(r) for r in raws],
        "results": [asdict(r) for r in runs],
        "targets": targets,
        "rss": rss,
    }
    write_json(args.output, document)
    print(f"\ntotal {total_seconds:.0f} s; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
