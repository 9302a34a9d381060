"""The incidents read model: its tables, and how a batch of events rewrites the changed rows.

One row per incident in `proj_incidents` (with its local period keys, hour and weekday in the
catalog's time zone, its attribution status and the band of its strongest attribution), and
child rows for its weapons and its current attributions. Times are BIGINT microseconds since
the epoch (UTC), so they order correctly on both dialects. Free-text search reads casefolded
copies of the description and the address.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo

from projections.base import Projection, Recorded
from projections.incidents import (
    EVENT_TYPES,
    NAME,
    GangAttribution,
    IncidentState,
    build_state,
    fold_batch,
    from_micros,
    local_values,
    to_micros,
)
from projections.store import ViewTransaction
from service.areas import AreaCatalog

CHUNK = 500
"""Ids per IN (...) list: well below either dialect's limit on parameters."""

STATE_COLUMNS = (
    "i.incident_id, i.occurred_at, i.reported_at, i.municipality_code, i.police_zone_code, "
    "i.killed, i.injured, i.address, i.description, i.drug_nexus, i.link_count, i.version, "
    "i.position"
)
"""The columns `state_from_row` reads, in its order (from `proj_incidents i`)."""
STATE_WIDTH = 13
"""How many columns STATE_COLUMNS names."""


class IncidentsProjection(Projection):
    """The current state of every incident: place, local time, casualties, weapons, gangs."""

    name: ClassVar[str] = NAME
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    tables: ClassVar[tuple[str, ...]] = (
        "proj_incidents",
        "proj_incident_weapons",
        "proj_incident_attributions",
    )
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS proj_incidents ("
        "incident_id TEXT PRIMARY KEY, occurred_at BIGINT NOT NULL, reported_at BIGINT NOT NULL, "
        "municipality_code TEXT NOT NULL, police_zone_code TEXT NOT NULL, "
        "local_day TEXT NOT NULL, local_week TEXT NOT NULL, local_month TEXT NOT NULL, "
        "local_year TEXT NOT NULL, local_hour INTEGER NOT NULL, local_weekday INTEGER NOT NULL, "
        "killed BIGINT NOT NULL, injured BIGINT NOT NULL, address TEXT NOT NULL, "
        "description TEXT NOT NULL, address_folded TEXT NOT NULL, "
        "description_folded TEXT NOT NULL, drug_nexus INTEGER NOT NULL, "
        "attribution_status TEXT NOT NULL, strongest_band TEXT NOT NULL, "
        "link_count BIGINT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS proj_incidents_by_time "
        "ON proj_incidents (occurred_at, incident_id)",
        "CREATE INDEX IF NOT EXISTS proj_incidents_by_municipality "
        "ON proj_incidents (municipality_code, occurred_at)",
        "CREATE INDEX IF NOT EXISTS proj_incidents_by_zone "
        "ON proj_incidents (police_zone_code, occurred_at)",
        "CREATE TABLE IF NOT EXISTS proj_incident_weapons ("
        "incident_id TEXT NOT NULL, kind TEXT NOT NULL, weapon_count BIGINT NOT NULL, "
        "PRIMARY KEY (incident_id, kind))",
        "CREATE INDEX IF NOT EXISTS proj_incident_weapons_by_kind "
        "ON proj_incident_weapons (kind, incident_id)",
        "CREATE TABLE IF NOT EXISTS proj_incident_attributions ("
        "incident_id TEXT NOT NULL, gang_id TEXT NOT NULL, "
        "confidence DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, band TEXT NOT NULL, "
        "attributed_at BIGINT NOT NULL, PRIMARY KEY (incident_id, gang_id))",
        "CREATE INDEX IF NOT EXISTS proj_incident_attributions_by_gang "
        "ON proj_incident_attributions (gang_id, incident_id)",
    )

    def __init__(self, catalog: AreaCatalog) -> None:
        self._zone = ZoneInfo(catalog.timezone)

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Fold the batch onto the stored states, then rewrite the incidents that changed."""
        # An incident reported in this batch starts here (ShootingReported is its first event):
        # only the others need their state from the tables.
        reported = {e.originator_id for e in events if e.event_type == "ShootingReported"}
        known = load_states(tx, {e.originator_id for e in events} - reported)
        write_states(tx, fold_batch(known, events).values(), known, self._zone)


def _chunks(ids: Sequence[str]) -> Iterable[tuple[list[str], str]]:
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        yield chunk, ",".join("?" * len(chunk))


def state_from_row(
    row: Sequence[Any],
    weapons: Sequence[tuple[str, int]],
    attributions: Sequence[GangAttribution],
) -> IncidentState:
    """An incident's state from its row (STATE_COLUMNS) and its child rows."""
    return build_state(
        {
            "incident_id": UUID(row[0]),
            "occurred_at": from_micros(int(row[1])),
            "reported_at": from_micros(int(row[2])),
            "municipality_code": row[3],
            "police_zone_code": row[4],
            "killed": int(row[5]),
            "injured": int(row[6]),
            "weapons": tuple(sorted(weapons)),
            "address": row[7],
            "description": row[8],
            "drug_nexus": bool(row[9]),
            "attributions": tuple(sorted(attributions, key=lambda a: str(a.gang_id))),
            "link_count": int(row[10]),
            "version": int(row[11]),
            "position": int(row[12]),
        }
    )


def load_children(
    tx: ViewTransaction, incident_ids: Iterable[str]
) -> tuple[dict[str, list[tuple[str, int]]], dict[str, list[GangAttribution]]]:
    """The weapons and the current attributions of the given incidents, by incident id."""
    weapons: dict[str, list[tuple[str, int]]] = {}
    attributions: dict[str, list[GangAttribution]] = {}
    for chunk, marks in _chunks(sorted(set(incident_ids))):
        for incident, kind, count in tx.fetchall(
            "SELECT incident_id, kind, weapon_count FROM proj_incident_weapons "  # noqa: S608
            f"WHERE incident_id IN ({marks})",
            chunk,
        ):
            weapons.setdefault(incident, []).append((kind, int(count)))
        for incident, gang, confidence, status, attributed_at in tx.fetchall(
            "SELECT incident_id, gang_id, confidence, status, attributed_at "  # noqa: S608
            f"FROM proj_incident_attributions WHERE incident_id IN ({marks})",
            chunk,
        ):
            attributions.setdefault(incident, []).append(
                GangAttribution(UUID(gang), float(confidence), status, from_micros(attributed_at))
            )
    return weapons, attributions


def load_states(tx: ViewTransaction, incident_ids: Iterable[UUID]) -> dict[UUID, IncidentState]:
    """The stored states of the given incidents, where known."""
    ids = sorted({str(i) for i in incident_ids})
    rows: list[tuple[Any, ...]] = []
    for chunk, marks in _chunks(ids):
        rows.extend(
            tx.fetchall(
                f"SELECT {STATE_COLUMNS} FROM proj_incidents i "  # noqa: S608
                f"WHERE i.incident_id IN ({marks})",
                chunk,
            )
        )
    weapons, attributions = load_children(tx, (row[0] for row in rows))
    states = (
        state_from_row(row, weapons.get(row[0], []), attributions.get(row[0], [])) for row in rows
    )
    return {state.incident_id: state for state in states}


_INSERT = (
    "INSERT INTO proj_incidents (incident_id, occurred_at, municipality_code, police_zone_code, "
    "local_day, local_week, local_month, local_year, local_hour, local_weekday, reported_at, "
    "killed, injured, address, description, address_folded, description_folded, drug_nexus, "
    "attribution_status, strongest_band, link_count, version, position) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
"""A new row: the incident id, then `_place_values` and `_other_values`."""
_UPDATE_ALL = (
    "UPDATE proj_incidents SET occurred_at = ?, municipality_code = ?, police_zone_code = ?, "
    "local_day = ?, local_week = ?, local_month = ?, local_year = ?, local_hour = ?, "
    "local_weekday = ?, reported_at = ?, killed = ?, injured = ?, address = ?, "
    "description = ?, address_folded = ?, description_folded = ?, drug_nexus = ?, "
    "attribution_status = ?, strongest_band = ?, link_count = ?, version = ?, position = ? "
    "WHERE incident_id = ?"
)
"""A row whose time or place changed: `_place_values`, `_other_values`, the incident id."""
_UPDATE_OTHERS = (
    "UPDATE proj_incidents SET reported_at = ?, killed = ?, injured = ?, address = ?, "
    "description = ?, address_folded = ?, description_folded = ?, drug_nexus = ?, "
    "attribution_status = ?, strongest_band = ?, link_count = ?, version = ?, position = ? "
    "WHERE incident_id = ?"
)
"""A row whose time and place did not change (its indexes stay): `_other_values`, the id."""


def write_states(
    tx: ViewTransaction,
    states: Iterable[IncidentState],
    stored: Mapping[UUID, IncidentState],
    zone: ZoneInfo,
) -> None:
    """Write the rows of the given incidents (and their child rows) from their states.

    `stored` is what the tables hold now for the incidents already in them; the others get
    their first rows. Only what changes is written: the weapons or attributions of an
    incident stay when they are unchanged, and so do the indexed columns of its row when its
    time and place are.
    """
    inserted: list[tuple[Any, ...]] = []
    moved: list[tuple[Any, ...]] = []
    updated: list[tuple[Any, ...]] = []
    weapons: list[tuple[Any, ...]] = []
    attributions: list[tuple[Any, ...]] = []
    stale_weapons: list[str] = []
    stale_attributions: list[str] = []
    for state in states:
        incident = str(state.incident_id)
        before = stored.get(state.incident_id)
        if before is None:
            inserted.append((incident, *_place_values(state, zone), *_other_values(state)))
        elif (
            before.occurred_at != state.occurred_at
            or before.municipality_code != state.municipality_code
            or before.police_zone_code != state.police_zone_code
        ):
            moved.append((*_place_values(state, zone), *_other_values(state), incident))
        else:
            updated.append((*_other_values(state), incident))
        if before is None or before.weapons != state.weapons:
            if before is not None:
                stale_weapons.append(incident)
            weapons.extend((incident, kind, count) for kind, count in state.weapons)
        if before is None or before.attributions != state.attributions:
            if before is not None:
                stale_attributions.append(incident)
            attributions.extend(
                (
                    incident,
                    str(a.gang_id),
                    a.confidence,
                    a.status,
                    a.band,
                    to_micros(a.attributed_at),
                )
                for a in state.attributions
            )
    _delete(tx, "proj_incident_weapons", stale_weapons)
    _delete(tx, "proj_incident_attributions", stale_attributions)
    tx.executemany(_INSERT, inserted)
    tx.executemany(_UPDATE_ALL, moved)
    tx.executemany(_UPDATE_OTHERS, updated)
    tx.executemany(
        "INSERT INTO proj_incident_weapons (incident_id, kind, weapon_count) VALUES (?,?,?)",
        weapons,
    )
    tx.executemany(
        "INSERT INTO proj_incident_attributions (incident_id, gang_id, confidence, status, band, "
        "attributed_at) VALUES (?,?,?,?,?,?)",
        attributions,
    )


def _delete(tx: ViewTransaction, table: str, incident_ids: Sequence[str]) -> None:
    for chunk, marks in _chunks(incident_ids):
        tx.execute(f"DELETE FROM {table} WHERE incident_id IN ({marks})", chunk)  # noqa: S608


def _place_values(state: IncidentState, zone: ZoneInfo) -> tuple[Any, ...]:
    """The values of the columns the indexes cover, and of the local time."""
    return (
        to_micros(state.occurred_at),
        state.municipality_code,
        state.police_zone_code,
        *local_values(state.occurred_at, zone),
    )


def _other_values(state: IncidentState) -> tuple[Any, ...]:
    """The values of the columns no index covers (after the place, in `_INSERT`)."""
    return (
        to_micros(state.reported_at),
        state.killed,
        state.injured,
        state.address,
        state.description,
        state.address.casefold(),
        state.description.casefold(),
        int(state.drug_nexus),
        state.attribution_status,
        state.strongest_band,
        state.link_count,
        state.version,
        state.position,
    )
