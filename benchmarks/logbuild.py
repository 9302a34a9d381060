"""Building a realistic event log for the Subscribe benchmark directly in SQLite.

Gang, Incident, UnifiedCommand (with its municipalities' slots) and AssetCase aggregates are
created in this process through the domain (ShootingReported with weapons, sources and a
~200-character description; later CasualtiesRevised and AttributedToGang events of recent
incidents; now and then a police command unified over a shooting's area or ended, and a step
of an asset case — see benchmarks/logbuild_cases.py), turned into stored events by
`registry_mapper()` and written by `SQLiteEventStore.append`, one PendingWrite (unique request
id, fingerprint and tags) per command and ~1000 writes per transaction. See `build_log`.

A large log repeats the domain-built incident and asset-case histories under fresh aggregate
ids; an asset case's copy also gets a fresh reference (its id derives from it). Police
commands are not copied: a municipality's command slot is one stream (its id derives from the
municipality code), and copies of commands would put one municipality under two active
commands, or give its slot stream duplicate versions. Instead the builder goes on making
commands through the domain between the copies, in the same proportion as in the domain-built
part, so the copies keep the rule "one active command per municipality" and every command
and slot stream stays a valid history.

When every replayed write holds events of its own aggregate only (as the builder makes them),
the copies are made inside SQLite (`clone_in_sqlite`: INSERT ... SELECT per segment of a few
hundred events, between which the new commands are inserted) with the rows
`SQLiteEventStore.append` would write: the events under a fresh aggregate id and the same
versions, topics and states, an accepted-request row per write (unique request id and
fingerprint, the new aggregate id, version and position of its last event) and the same tags
at the new positions. Otherwise they go through `SQLiteEventStore.append` write by write.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from logbuild_cases import (
    ASSET_WRITE_SHARE,
    COMMAND_WRITE_SHARE,
    ROOM_FOR_ANY_WRITE,
    AreaHistories,
    reference_of,
    renamed_reference,
    renamed_state,
)
from logbuild_clone import clone_copies

from service.areas import AreaCatalog, load_catalog
from service.domain.asset_case import case_id
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

WRITES_PER_COMMIT = 1000
GANG_COUNT = 40
RECENT_INCIDENTS = 5000
FOLLOW_UP_SHARE = 0.3  # of commands: a later fact about a recent incident (~1.4 events/incident)

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
    commands: int = 0
    """Unified police commands (PoliceCommandUnified events)."""
    asset_cases: int = 0
    """Asset cases opened (AssetCaseOpened events)."""

    def recount(self) -> None:
        """Derive the aggregate counts from `event_types`."""
        self.incidents = self.event_types.get("ShootingReported", 0)
        self.gangs = self.event_types.get("GangRegistered", 0)
        self.commands = self.event_types.get("PoliceCommandUnified", 0)
        self.asset_cases = self.event_types.get("AssetCaseOpened", 0)


class LogBuilder:
    """Creates realistic registry histories in-process and appends them in batches."""

    def __init__(self, catalog: AreaCatalog, seed: int) -> None:
        self._catalog = catalog
        self._rng = random.Random(seed)
        self._mapper = registry_mapper()
        self._codes = sorted(catalog.municipalities)
        self._now = datetime.now(UTC).replace(microsecond=0)
        self._run = uuid.uuid4().hex[:8]
        self._sequence = 0
        self._gangs: list[Gang] = []
        self._recent: deque[Incident] = deque(maxlen=RECENT_INCIDENTS)
        self._room = 0  # events the log can still take
        self._areas = AreaHistories(catalog, self._rng, self._now, self._mapper, self._request)

    def build(
        self,
        store: SQLiteEventStore,
        total: int,
        *,
        domain_events: int | None = None,
        progress: bool = False,
        template: list[tuple[int, PendingWrite]] | None = None,
    ) -> BuildStats:
        """Append exactly `total` events to `store` (which should be empty).

        The first `domain_events` (default: all) come from the domain; the rest replay those
        histories again and again under fresh aggregate ids and request ids (same payloads,
        so the same decoding cost), which is several times faster. With `template`, only the
        domain part is appended and its writes are added to `template` with their positions,
        for `clone_in_sqlite` to repeat.
        """
        started = time.perf_counter()
        counts: dict[str, int] = {}
        state_bytes = 0
        pending: list[PendingWrite] = []
        templates: list[PendingWrite] = []
        limit = total if domain_events is None else min(domain_events, total)
        if template is not None:
            total = limit
        cloning = limit < total
        source: Iterator[PendingWrite] = self._domain_writes(total)
        switched = False
        events = writes = 0
        next_report = 250_000
        while events < total:
            if cloning and not switched and events >= limit:
                source, switched = self._cloned_writes(templates), True
            self._room = total - events
            write = next(source)
            if cloning and not switched:
                templates.append(write)
            for stored in write.events:
                name = stored.topic.rpartition(".")[2]
                counts[name] = counts.get(name, 0) + 1
                state_bytes += len(stored.state)
            pending.append(write)
            events += len(write.events)
            writes += 1
            if len(pending) == WRITES_PER_COMMIT or events >= total:
                positions = store.append(pending)
                if template is not None:
                    template.extend(zip(positions, pending, strict=True))
                pending = []
            if progress and events >= next_report:
                rate = events / (time.perf_counter() - started)
                print(f"  built {events:,} events ({rate:,.0f} events/s)", flush=True)
                next_report += 250_000
        seconds = time.perf_counter() - started
        stats = BuildStats(
            events=events,
            writes=writes,
            incidents=0,
            gangs=0,
            event_types=dict(sorted(counts.items())),
            seconds=seconds,
            events_per_s=events / seconds,
            file_mb=0.0,
            mean_state_bytes=state_bytes / max(events, 1),
            domain_events=limit,
        )
        stats.recount()
        return stats

    def _domain_writes(self, total: int) -> Iterator[PendingWrite]:
        """Yield commands' writes: the gangs first, then new shootings and later facts, and
        now and then a police command's or an asset case's (while the log has room for any
        write; single-event writes fill the last events exactly)."""
        rng = self._rng
        gangs, recent = self._gangs, self._recent
        while len(gangs) < min(GANG_COUNT, max(1, total // 50)):
            yield self._register_gang(gangs)
        while True:
            draw = rng.random()
            if self._room >= ROOM_FOR_ANY_WRITE and draw < COMMAND_WRITE_SHARE:
                yield self._areas.command_write(recent)
            elif self._room >= ROOM_FOR_ANY_WRITE and draw < COMMAND_WRITE_SHARE + (
                ASSET_WRITE_SHARE
            ):
                yield self._areas.asset_write(gangs, recent)
            elif recent and rng.random() < FOLLOW_UP_SHARE:
                yield self._follow_up(rng.choice(recent), gangs)
            else:
                yield self.report_shooting()

    def command_write(self) -> PendingWrite:
        """Unify or end a police command, through the domain (see AreaHistories)."""
        return self._areas.command_write(self._recent)

    def report_shooting(self) -> PendingWrite:
        """Report a new shooting, through the domain: a write of one event."""
        write, incident = self._report_shooting()
        self._recent.append(incident)
        return write

    def _cloned_writes(self, template: list[PendingWrite]) -> Iterator[PendingWrite]:
        """Replay the template's incident and asset-case writes, in order, under fresh ids
        (and fresh case references), round after round, with new police commands between
        them in the domain-built part's proportion."""
        replayed = [w for w in template if _replayable(w)]
        if not replayed:
            msg = "the domain-built part of the log has no incident to replay"
            raise ValueError(msg)
        copy = 0
        while True:
            copy += 1
            fresh: dict[UUID, UUID] = {}
            references: dict[UUID, tuple[str, str]] = {}
            for write in replayed:
                if self._room >= ROOM_FOR_ANY_WRITE and self._rng.random() < COMMAND_WRITE_SHARE:
                    yield self.command_write()  # `build` updates the room before resuming
                if self._room < len(write.events):  # the log's last event: a new shooting
                    yield self.report_shooting()
                    continue
                events: list[StoredEvent] = []
                for e in write.events:
                    state = e.state
                    if e.topic.endswith(".AssetCaseOpened"):
                        old = reference_of(e)
                        references[write.aggregate_id] = (old, renamed_reference(old, copy))
                        fresh[write.aggregate_id] = case_id(references[write.aggregate_id][1])
                        state = renamed_state(state, *references[write.aggregate_id])
                    new_id = fresh.setdefault(write.aggregate_id, uuid.uuid4())
                    events.append(StoredEvent(new_id, e.originator_version, e.topic, state))
                self._sequence += 1
                yield PendingWrite(
                    request_id=f"bench-{self._run}-{self._sequence}",
                    fingerprint=f"clone-{self._sequence}",
                    aggregate_id=fresh[write.aggregate_id],
                    version=write.version,
                    events=events,
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
    """Create a fresh SQLite log of `total` events at `path` (see LogBuilder.build).

    When `domain_events` < `total` and every incident and asset-case write of the domain part
    holds events of its own aggregate only, the rest is cloned inside SQLite
    (`clone_in_sqlite`), with new police commands between the copies.
    """
    started = time.perf_counter()
    store = SQLiteEventStore(path, synchronous="NORMAL")
    template: list[tuple[int, PendingWrite]] = []
    cloning = domain_events is not None and domain_events < total
    try:
        builder = LogBuilder(load_catalog("brussels"), seed)
        stats = builder.build(
            store,
            total,
            domain_events=domain_events,
            progress=progress,
            template=template if cloning else None,
        )
    finally:
        store.close()
    if cloning:
        replayed = [(p, w) for p, w in template if _replayable(w)]
        if all(e.originator_id == w.aggregate_id for _, w in replayed for e in w.events):
            clone_in_sqlite(
                path, replayed, total - stats.events, stats, progress=progress, builder=builder
            )
        else:  # the store's own path, write by write
            path.unlink()
            return build_log_by_writes(path, total, seed, domain_events, progress)
        stats.seconds = time.perf_counter() - started
        stats.events_per_s = stats.events / stats.seconds
    stats.file_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    return stats


def build_log_by_writes(
    path: Path, total: int, seed: int, domain_events: int | None, progress: bool
) -> BuildStats:
    """Create the log with every write, cloned ones included, through the store."""
    store = SQLiteEventStore(path, synchronous="NORMAL")
    try:
        builder = LogBuilder(load_catalog("brussels"), seed)
        stats = builder.build(store, total, domain_events=domain_events, progress=progress)
    finally:
        store.close()
    stats.file_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    return stats


def _replayable(write: PendingWrite) -> bool:
    """Whether copies of the write's history go into a large log: incidents and asset cases."""
    topic = write.events[0].topic
    return "Incident." in topic or "AssetCase." in topic


def clone_in_sqlite(
    path: Path,
    template: list[tuple[int, PendingWrite]],
    count: int,
    stats: BuildStats,
    *,
    progress: bool = False,
    builder: LogBuilder | None = None,
) -> None:
    """Append `count` events to the log at `path`: copies of the `template` writes, with new
    police commands from `builder` between them (see logbuild_clone.clone_copies). Without
    `builder` (the one that built the log, whose commands and slots are the log's), no
    commands are added."""
    maker = builder or LogBuilder(load_catalog("brussels"), count)
    clone_copies(
        path, template, count, stats, maker, commands=builder is not None, progress=progress
    )
