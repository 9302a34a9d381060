"""A CSV column mapping: how each row of a file becomes a ReportShooting.

The mapping is a JSON or TOML file (see `clients/examples/toronto_mapping.json` and the
README's "Operator CLI" section). Every field is one of `{"column": NAME}` (with options),
`{"value": CONSTANT}` or, for texts, `{"template": "… {COLUMN} …"}`. The row key gives each
row a stable request id, so importing the same file again replays instead of duplicating.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from incident_registry_client import (
    GeoPoint,
    ShootingReport,
    Source,
    SourceKind,
    Weapon,
    WeaponKind,
)
from incident_registry_client.cli.csv_fields import (
    MappingError,
    Reader,
    RowError,
    TextSpec,
    TimeSpec,
    bool_spec,
    int_spec,
    text_spec,
    time_spec,
)

__all__ = ["CsvMapping", "MappingError", "RowError", "load_mapping"]

FIELDS = {
    "delimiter",
    "encoding",
    "null_values",
    "row_key",
    "occurred_at",
    "reported_at",
    "municipality",
    "killed",
    "injured",
    "assailant_count",
    "assailants_masked",
    "drug_nexus",
    "address",
    "description",
    "external_reference",
    "weapons",
    "location",
    "sources",
}


@dataclass(frozen=True)
class RowKey:
    """The columns whose values identify a row, and a prefix: the row's request id."""

    columns: tuple[str, ...]
    prefix: str

    def request_id(self, read: Reader) -> str:
        """The request id of a row; RowError when a key column is empty."""
        values = [read.required(column) for column in self.columns]
        return self.prefix + "|".join(values)


@dataclass(frozen=True)
class MunicipalitySpec:
    """The municipality column and a map of its values to codes (null or "": skip the row)."""

    column: str
    values: dict[str, str | None]


@dataclass(frozen=True)
class WeaponsSpec:
    """Weapons: constant ones, or a column of kinds (mapped by `values`) split by `separator`."""

    value: tuple[Weapon, ...] = ()
    column: str | None = None
    values: dict[str, str | None] = field(default_factory=dict)
    separator: str = ";"

    def weapons(self, read: Reader) -> tuple[Weapon, ...]:
        """The weapons of a row."""
        if self.column is None:
            return self.value
        text = read.optional(self.column)
        found: dict[WeaponKind, int] = {}
        for piece in filter(None, (p.strip() for p in (text or "").split(self.separator))):
            kind = self.values.get(piece, piece.lower())
            if not kind:  # mapped to null or "": not a firearm, not counted
                continue
            try:
                weapon_kind = WeaponKind(kind)
            except ValueError:
                msg = f"{piece!r} is no weapon kind (map it in values)"
                raise RowError(self.column, msg) from None
            found[weapon_kind] = found.get(weapon_kind, 0) + 1
        return tuple(Weapon(kind, count) for kind, count in found.items())


@dataclass(frozen=True)
class LocationSpec:
    """Coordinates from one column and a pattern, or two columns; outside `bounds` dropped."""

    column: str | None
    pattern: re.Pattern[str] | None
    latitude_column: str | None
    longitude_column: str | None
    bounds: tuple[float, float, float, float] | None

    def location(self, read: Reader) -> GeoPoint | None:
        """The row's location, or None when missing, unreadable or out of bounds."""
        if self.column is not None and self.pattern is not None:
            match = self.pattern.search(read.optional(self.column) or "")
            if match is None:
                return None
            lat_text, lon_text = match["latitude"], match["longitude"]
        else:
            lat_text = read.optional(self.latitude_column or "")
            lon_text = read.optional(self.longitude_column or "")
        try:
            lat, lon = float(lat_text or ""), float(lon_text or "")
        except ValueError:
            return None
        if self.bounds is not None:
            min_lat, max_lat, min_lon, max_lon = self.bounds
            if not (min_lat <= lat <= max_lat and min_lon <= lon <= max_lon):
                return None
        return GeoPoint(lat, lon)


@dataclass(frozen=True)
class SourceSpec:
    """A source of every row: its kind, and templates of its name and reference."""

    kind: SourceKind
    name: TextSpec
    reference: TextSpec


@dataclass(frozen=True)
class CsvMapping:
    """How to read a CSV file of shootings."""

    row_key: RowKey
    occurred_at: TimeSpec
    municipality: MunicipalitySpec
    reported_at: TimeSpec | None = None
    killed: Callable[[Reader], int] | None = None
    injured: Callable[[Reader], int] | None = None
    assailant_count: Callable[[Reader], int] | None = None
    assailants_masked: Callable[[Reader], bool] | None = None
    drug_nexus: Callable[[Reader], bool] | None = None
    address: TextSpec = field(default_factory=TextSpec)
    description: TextSpec = field(default_factory=TextSpec)
    external_reference: TextSpec = field(default_factory=TextSpec)
    weapons: WeaponsSpec = field(default_factory=WeaponsSpec)
    location: LocationSpec | None = None
    sources: tuple[SourceSpec, ...] = ()
    delimiter: str = ","
    encoding: str = "utf-8"
    null_values: frozenset[str] = frozenset({""})

    def report(self, row: dict[str, str]) -> ShootingReport | None:
        """The shooting of a row; None when its municipality maps to null or "" (skip it)."""
        read = Reader(row, self.null_values)
        raw_code = read.required(self.municipality.column)
        code = self.municipality.values.get(raw_code, raw_code)
        if not code:  # mapped to null (JSON) or "" (TOML has no null): leave the row out
            return None
        occurred_at, precision = self.occurred_at.read(read)
        return ShootingReport(
            occurred_at=occurred_at,
            occurred_at_precision=precision,
            municipality_code=code,
            reported_at=self.reported_at.read(read)[0] if self.reported_at else None,
            address=self.address.text(read),
            location=self.location.location(read) if self.location else None,
            weapons=self.weapons.weapons(read),
            assailant_count=self.assailant_count(read) if self.assailant_count else 0,
            assailants_masked=self.assailants_masked(read) if self.assailants_masked else False,
            killed=self.killed(read) if self.killed else 0,
            injured=self.injured(read) if self.injured else 0,
            drug_nexus=self.drug_nexus(read) if self.drug_nexus else False,
            description=self.description.text(read),
            sources=[
                Source(s.kind, s.name.text(read), s.reference.text(read)) for s in self.sources
            ],
            external_reference=self.external_reference.text(read),
            request_id=self.row_key.request_id(read),
        )


def load_mapping(path: Path, *, default_timezone: tzinfo) -> CsvMapping:
    """Read a mapping file (.json or .toml); MappingError names what is wrong."""
    try:
        data: Any
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        msg = f"cannot read the mapping {path}: {err}"
        raise MappingError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: a mapping is an object of fields"
        raise MappingError(msg)
    return parse_mapping(data, default_timezone=default_timezone)


def parse_mapping(data: dict[str, Any], *, default_timezone: tzinfo) -> CsvMapping:
    """A mapping from its JSON/TOML object."""
    # Keys starting with "_" are comments.
    unknown = sorted(k for k in set(data) - FIELDS if not k.startswith("_"))
    if unknown:
        msg = f"unknown mapping fields: {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})"
        raise MappingError(msg)
    for required in ("row_key", "occurred_at", "municipality"):
        if required not in data:
            msg = f"the mapping needs {required!r}"
            raise MappingError(msg)
    key = data["row_key"]
    columns = key.get("columns") or ([key["column"]] if "column" in key else [])
    if not columns:
        raise MappingError("row_key needs 'column' or 'columns'")
    municipality = data["municipality"]
    if "column" not in municipality:
        raise MappingError("municipality needs 'column'")
    return CsvMapping(
        row_key=RowKey(tuple(columns), str(key.get("prefix", ""))),
        occurred_at=time_spec("occurred_at", data["occurred_at"], default_timezone),
        municipality=MunicipalitySpec(municipality["column"], dict(municipality.get("values", {}))),
        reported_at=(
            time_spec("reported_at", data["reported_at"], default_timezone)
            if "reported_at" in data
            else None
        ),
        killed=int_spec("killed", data.get("killed")),
        injured=int_spec("injured", data.get("injured")),
        assailant_count=int_spec("assailant_count", data.get("assailant_count")),
        assailants_masked=bool_spec("assailants_masked", data.get("assailants_masked")),
        drug_nexus=bool_spec("drug_nexus", data.get("drug_nexus")),
        address=text_spec("address", data.get("address")),
        description=text_spec("description", data.get("description")),
        external_reference=text_spec("external_reference", data.get("external_reference")),
        weapons=_weapons(data.get("weapons")),
        location=_location(data.get("location")),
        sources=tuple(_source(s) for s in data.get("sources", ())),
        delimiter=str(data.get("delimiter", ",")),
        encoding=str(data.get("encoding", "utf-8")),
        null_values=frozenset(data.get("null_values", [""])),
    )


def _weapons(spec: Any) -> WeaponsSpec:
    if spec is None:
        return WeaponsSpec()
    if "value" in spec:
        try:
            weapons = tuple(
                Weapon(WeaponKind(w["kind"]), int(w.get("count", 1))) for w in spec["value"]
            )
        except (KeyError, TypeError, ValueError) as err:
            msg = f"weapons.value: a list of {{kind, count}} with known kinds ({err})"
            raise MappingError(msg) from None
        return WeaponsSpec(value=weapons)
    if "column" not in spec:
        raise MappingError("weapons needs 'value' or 'column'")
    return WeaponsSpec(
        column=spec["column"],
        values=dict(spec.get("values", {})),
        separator=spec.get("separator", ";"),
    )


def _location(spec: Any) -> LocationSpec | None:
    if spec is None:
        return None
    bounds = spec.get("bounds")
    box = None
    if bounds is not None:
        box = (bounds["min_lat"], bounds["max_lat"], bounds["min_lon"], bounds["max_lon"])
    if "pattern" in spec:
        pattern = re.compile(spec["pattern"])
        if not {"latitude", "longitude"} <= set(pattern.groupindex):
            raise MappingError("location.pattern needs groups (?P<latitude>…) and (?P<longitude>…)")
        return LocationSpec(spec.get("column"), pattern, None, None, box)
    if "latitude_column" in spec and "longitude_column" in spec:
        return LocationSpec(None, None, spec["latitude_column"], spec["longitude_column"], box)
    raise MappingError("location needs column + pattern, or latitude_column + longitude_column")


def _source(spec: Any) -> SourceSpec:
    try:
        kind = SourceKind(spec["kind"])
    except (KeyError, TypeError, ValueError):
        msg = f"sources: each has a kind of {', '.join(k.value for k in SourceKind)}"
        raise MappingError(msg) from None
    return SourceSpec(
        kind,
        TextSpec(template=spec.get("name", "")),
        TextSpec(template=spec.get("reference", "")),
    )
