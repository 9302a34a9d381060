"""Area catalog: the municipalities, police zones and geographic bounds a registry covers."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping
    from importlib.abc import Traversable

BUNDLED_CATALOGS: tuple[str, ...] = ("brussels", "toronto")
_KEYS = ("catalog_id", "name", "currency", "timezone", "bounds", "municipalities", "police_zones")
_BOUND_KEYS = ("min_lat", "max_lat", "min_lon", "max_lon")
_ZONE_KEYS = ("code", "name", "municipalities")
_T = TypeVar("_T")


class CatalogError(ValueError):
    """An area catalog file is unreadable, malformed or inconsistent."""


class UnknownAreaError(LookupError):
    """A municipality or police-zone code is not part of the area catalog."""

    def __init__(self, kind: str, code: str, catalog_id: str) -> None:
        self.kind, self.code, self.catalog_id = kind, code, catalog_id
        super().__init__(f"unknown {kind} code {code!r} in area catalog {catalog_id!r}")


@dataclass(frozen=True, slots=True)
class Municipality:
    """A municipality (or police division) and the police zone it belongs to."""

    code: str
    name: str
    names: Mapping[str, str] = field(hash=False)
    police_zone: str


@dataclass(frozen=True, slots=True)
class PoliceZone:
    """A police zone and the codes of the municipalities it covers."""

    code: str
    name: str
    municipalities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Bounds:
    """A latitude/longitude bounding box in decimal degrees (WGS 84), edges included."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        """Return whether the point (lat, lon) lies inside the box."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


@dataclass(frozen=True, slots=True)
class AreaCatalog:
    """The areas known to one registry deployment (a city or region)."""

    catalog_id: str
    name: str
    currency: str
    timezone: str
    bounds: Bounds
    municipalities: Mapping[str, Municipality] = field(hash=False)
    police_zones: Mapping[str, PoliceZone] = field(hash=False)

    def has_municipality(self, code: str) -> bool:
        """Return whether ``code`` is a municipality of this catalog."""
        return code in self.municipalities

    def municipality(self, code: str) -> Municipality:
        """Return the municipality ``code``; raise UnknownAreaError if there is none."""
        if code not in self.municipalities:
            raise UnknownAreaError("municipality", code, self.catalog_id)
        return self.municipalities[code]

    def police_zone(self, code: str) -> PoliceZone:
        """Return the police zone ``code``; raise UnknownAreaError if there is none."""
        if code not in self.police_zones:
            raise UnknownAreaError("police zone", code, self.catalog_id)
        return self.police_zones[code]

    def zone_of(self, municipality_code: str) -> str:
        """Return the code of the police zone covering a municipality."""
        return self.municipality(municipality_code).police_zone

    def expand(
        self, municipality_codes: Iterable[str], police_zone_codes: Iterable[str]
    ) -> tuple[str, ...]:
        """Return the sorted union of the municipalities and those of the police zones."""
        codes = {self.municipality(code).code for code in municipality_codes}
        for zone in police_zone_codes:
            codes.update(self.police_zone(zone).municipalities)
        return tuple(sorted(codes))


def _check(ok: object, where: str, problem: str) -> None:
    if not ok:
        raise CatalogError(f"{where}: {problem}")


def _fields(value: object, where: str, keys: tuple[str, ...]) -> list[Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: expected a JSON object, got {type(value).__name__}")
    missing, unknown = [k for k in keys if k not in value], sorted(set(value) - set(keys))
    _check(not missing, where, f"missing key(s) {', '.join(missing)}")
    _check(not unknown, where, f"unknown key(s) {', '.join(unknown)}")
    return [value[key] for key in keys]


def _need(value: object, where: str, kind: type[_T]) -> _T:
    _check(
        isinstance(value, kind) and value and not str(value).isspace(),
        where,
        f"expected a non-empty {kind.__name__}, got {value!r}",
    )
    return cast("_T", value)


def _bounds(value: object) -> Bounds:
    box = dict(zip(_BOUND_KEYS, _fields(value, "bounds", _BOUND_KEYS), strict=True))
    for key, number in box.items():
        limit = 90 if key.endswith("lat") else 180
        _check(
            type(number) in (int, float) and -limit <= number <= limit,
            f"bounds.{key}",
            f"expected a number within [-{limit}, {limit}], got {number!r}",
        )
    for low, high in (("min_lat", "max_lat"), ("min_lon", "max_lon")):
        _check(box[low] < box[high], "bounds", f"inverted, {low}={box[low]} >= {high}={box[high]}")
    return Bounds(**{key: float(number) for key, number in box.items()})


def _parse(data: object) -> AreaCatalog:
    values = dict(zip(_KEYS, _fields(data, "catalog", _KEYS), strict=True))
    catalog_id, name, currency, timezone = (_need(values[key], key, str) for key in _KEYS[:4])
    _check(re.fullmatch(r"[A-Z]{3}", currency), "currency", f"{currency!r} is not ISO 4217")
    _check(re.fullmatch(r"UTC|\w+(/[\w+-]+)+", timezone), "timezone", f"{timezone!r} not IANA")
    labels: dict[str, tuple[str, Mapping[str, str]]] = {}
    for i, item in enumerate(_need(values["municipalities"], "municipalities", list)):
        code, label, names = _fields(item, f"municipalities[{i}]", ("code", "name", "names"))
        code = _need(code, f"municipalities[{i}].code", str)
        _check(code not in labels, f"municipalities[{i}]", f"duplicate municipality {code!r}")
        where = f"municipality {code!r} names"
        _check(isinstance(names, dict) and names, where, "expected a non-empty object lang->name")
        labels[code] = (
            _need(label, f"municipality {code!r} name", str),
            MappingProxyType(
                {_need(k, where, str): _need(v, f"{where}.{k}", str) for k, v in names.items()}
            ),
        )
    zones, zone_of = dict[str, PoliceZone](), dict[str, str]()
    for i, item in enumerate(_need(values["police_zones"], "police_zones", list)):
        code, label, members = _fields(item, f"police_zones[{i}]", _ZONE_KEYS)
        code = _need(code, f"police_zones[{i}].code", str)
        _check(code not in zones, f"police_zones[{i}]", f"duplicate police zone {code!r}")
        where = f"police zone {code!r}"
        members = [_need(m, f"{where} municipalities", str) for m in _need(members, where, list)]
        for member in members:
            _check(member in labels, where, f"unknown municipality {member!r}")
            _check(
                member not in zone_of,
                f"municipality {member!r}",
                f"in two police zones, {zone_of.get(member)!r} and {code!r}",
            )
            zone_of[member] = code
        zones[code] = PoliceZone(code, _need(label, f"{where} name", str), tuple(members))
    orphans = ", ".join(sorted(set(labels) - set(zone_of)))
    _check(not orphans, "police_zones", f"municipality(ies) in no police zone: {orphans}")
    municipalities = {
        code: Municipality(code, label, names, zone_of[code])
        for code, (label, names) in labels.items()
    }
    return AreaCatalog(
        catalog_id,
        name,
        currency,
        timezone,
        _bounds(values["bounds"]),
        MappingProxyType(municipalities),
        MappingProxyType(zones),
    )


def load_catalog(source: str | os.PathLike[str]) -> AreaCatalog:
    """Load a bundled catalog by name ("brussels", "toronto") or a catalog JSON file by path."""
    bundled = isinstance(source, str) and source in BUNDLED_CATALOGS
    origin = f"bundled catalog {source!r}" if bundled else f"catalog file {str(source)!r}"
    file: Traversable = Path(source)
    if bundled:
        file = resources.files("service.areas") / "data" / f"{source}.json"
    try:
        return _parse(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(
            f"cannot read {origin} (bundled: {', '.join(BUNDLED_CATALOGS)}): {exc}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{origin}: malformed JSON: {exc}") from None
    except CatalogError as exc:
        raise CatalogError(f"{origin}: {exc}") from None


@functools.cache
def default_catalog() -> AreaCatalog:
    """Return the Brussels-Capital Region catalog (loaded once, then cached)."""
    return load_catalog("brussels")
