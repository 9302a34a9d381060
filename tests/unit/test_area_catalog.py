"""Tests of the area catalog: bundled data and strict validation of catalog files."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import pytest

from service.areas import (
    BUNDLED_CATALOGS,
    AreaCatalog,
    Bounds,
    CatalogError,
    UnknownAreaError,
    default_catalog,
    load_catalog,
)

TORONTO_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "toronto_shootings.csv"
CLEMENCEAU = (50.8366, 4.3313)  # Anderlecht, Clemenceau metro station
PARIS = (48.8566, 2.3522)

VALID: dict[str, Any] = {
    "catalog_id": "mini",
    "name": "Mini City",
    "currency": "EUR",
    "timezone": "Europe/Brussels",
    "bounds": {"min_lat": 50.0, "max_lat": 51.0, "min_lon": 4.0, "max_lon": 5.0},
    "municipalities": [
        {"code": "A", "name": "Alpha", "names": {"en": "Alpha"}},
        {"code": "B", "name": "Beta / Bêta", "names": {"en": "Beta", "fr": "Bêta"}},
        {"code": "C", "name": "Gamma", "names": {"en": "Gamma"}},
    ],
    "police_zones": [
        {"code": "Z1", "name": "Zone 1", "municipalities": ["A", "B"]},
        {"code": "Z2", "name": "Zone 2", "municipalities": ["C"]},
    ],
}


def write(tmp_path: Path, data: Any, name: str = "catalog.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def mutated(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    data.update(changes)
    return data


@pytest.fixture
def brussels() -> AreaCatalog:
    return load_catalog("brussels")


# --- bundled catalogs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED_CATALOGS)
def test_bundled_catalogs_load(name: str) -> None:
    catalog = load_catalog(name)
    assert catalog.catalog_id == name
    assert catalog.municipalities
    assert catalog.police_zones


def test_default_catalog_is_brussels_and_cached() -> None:
    assert default_catalog().catalog_id == "brussels"
    assert default_catalog() is default_catalog()


def test_brussels_metadata(brussels: AreaCatalog) -> None:
    assert brussels.currency == "EUR"
    assert brussels.timezone == "Europe/Brussels"


def test_brussels_has_19_municipalities_in_6_zones(brussels: AreaCatalog) -> None:
    assert len(brussels.municipalities) == 19
    assert set(brussels.municipalities) == {f"210{n:02d}" for n in range(1, 20)}
    assert set(brussels.police_zones) == {"5339", "5340", "5341", "5342", "5343", "5344"}
    members = [code for zone in brussels.police_zones.values() for code in zone.municipalities]
    assert sorted(members) == sorted(brussels.municipalities)  # each exactly once
    for zone in brussels.police_zones.values():
        for code in zone.municipalities:
            assert brussels.zone_of(code) == zone.code


def test_brussels_names(brussels: AreaCatalog) -> None:
    ixelles = brussels.municipality("21009")
    assert ixelles.name == "Ixelles / Elsene"
    assert dict(ixelles.names) == {"fr": "Ixelles", "nl": "Elsene"}
    assert brussels.municipality("21001").name == "Anderlecht"
    assert brussels.police_zone("5341").name == "Midi"
    assert brussels.police_zone("5341").municipalities == ("21001", "21007", "21013")


def test_toronto_divisions_match_the_shared_csv() -> None:
    if not TORONTO_CSV.exists():
        pytest.skip(f"{TORONTO_CSV} is absent")
    with TORONTO_CSV.open(newline="", encoding="utf-8") as handle:
        divisions = {row["DIVISION"] for row in csv.DictReader(handle)}
    toronto = load_catalog("toronto")
    assert set(toronto.municipalities) == divisions
    assert len(toronto.municipalities) == 17
    assert toronto.municipality("D11").name == "11 Division"
    assert toronto.police_zone("TPS").municipalities == tuple(sorted(divisions))
    assert (toronto.currency, toronto.timezone) == ("CAD", "America/Toronto")


def test_bounds_contain_known_points(brussels: AreaCatalog) -> None:
    assert brussels.bounds.contains(*CLEMENCEAU)
    assert not brussels.bounds.contains(*PARIS)
    toronto = load_catalog("toronto")
    assert toronto.bounds.contains(43.6532, -79.3832)  # Toronto City Hall
    assert not toronto.bounds.contains(*CLEMENCEAU)


def test_bounds_edges_are_inclusive() -> None:
    box = Bounds(min_lat=1.0, max_lat=2.0, min_lon=3.0, max_lon=4.0)
    assert box.contains(1.0, 3.0)
    assert box.contains(2.0, 4.0)
    assert not box.contains(2.0001, 4.0)


# --- lookups and expansion ----------------------------------------------------------------


def test_has_municipality(brussels: AreaCatalog) -> None:
    assert brussels.has_municipality("21004")
    assert not brussels.has_municipality("99999")
    assert not brussels.has_municipality("5339")  # a zone, not a municipality


def test_expand_unions_municipalities_and_zones(brussels: AreaCatalog) -> None:
    assert brussels.expand(["21016", "21004"], ["5339"]) == ("21004", "21009", "21016")
    assert brussels.expand([], ["5344", "5341"]) == (
        "21001",
        "21006",
        "21007",
        "21013",
        "21014",
        "21015",
    )
    assert brussels.expand(["21010"], []) == ("21010",)
    assert brussels.expand([], []) == ()


@pytest.mark.parametrize(
    ("municipalities", "zones", "kind", "code"),
    [
        (["21004", "99999"], [], "municipality", "99999"),
        ([], ["5339", "9999"], "police zone", "9999"),
    ],
)
def test_expand_rejects_unknown_codes(
    brussels: AreaCatalog, municipalities: list[str], zones: list[str], kind: str, code: str
) -> None:
    with pytest.raises(UnknownAreaError, match=f"unknown {kind} code '{code}'") as info:
        brussels.expand(municipalities, zones)
    assert info.value.code == code
    assert "brussels" in str(info.value)


def test_unknown_codes_raise_unknown_area_error(brussels: AreaCatalog) -> None:
    with pytest.raises(UnknownAreaError, match=r"municipality code '00000'.*'brussels'"):
        brussels.municipality("00000")
    with pytest.raises(UnknownAreaError, match=r"police zone code '21004'.*'brussels'"):
        brussels.police_zone("21004")
    with pytest.raises(UnknownAreaError, match="municipality code 'D11'"):
        brussels.zone_of("D11")
    assert not issubclass(UnknownAreaError, KeyError)


def test_catalog_is_read_only(brussels: AreaCatalog) -> None:
    with pytest.raises(TypeError):
        brussels.municipalities["x"] = brussels.municipality("21001")  # type: ignore[index]
    with pytest.raises(TypeError):
        brussels.municipality("21001").names["de"] = "x"  # type: ignore[index]


# --- validation of catalog files ----------------------------------------------------------


def test_valid_file_loads(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, VALID))
    assert catalog.catalog_id == "mini"
    assert catalog.zone_of("B") == "Z1"
    assert catalog.expand(["C"], ["Z1"]) == ("A", "B", "C")
    assert load_catalog(str(write(tmp_path, VALID, "as-str.json"))) == catalog


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"cannot read.*no-such.json"):
        load_catalog(tmp_path / "no-such.json")
    with pytest.raises(CatalogError, match="bundled: brussels, toronto"):
        load_catalog("atlantis")


def test_malformed_json(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="malformed JSON"):
        load_catalog(write(tmp_path, '{"catalog_id": "x",'))


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog: expected a JSON object, got list"):
        load_catalog(write(tmp_path, [VALID]))


@pytest.mark.parametrize("key", ["catalog_id", "currency", "timezone", "bounds", "police_zones"])
def test_missing_top_level_key(tmp_path: Path, key: str) -> None:
    data = mutated()
    del data[key]
    with pytest.raises(CatalogError, match=f"catalog: missing key\\(s\\) {key}"):
        load_catalog(write(tmp_path, data))


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog: unknown key\\(s\\) country"):
        load_catalog(write(tmp_path, mutated(country="BE")))


def test_missing_key_in_municipality(tmp_path: Path) -> None:
    data = mutated()
    del data["municipalities"][1]["names"]
    with pytest.raises(CatalogError, match=r"municipalities\[1\]: missing key\(s\) names"):
        load_catalog(write(tmp_path, data))


def test_missing_key_in_zone(tmp_path: Path) -> None:
    data = mutated()
    del data["police_zones"][0]["municipalities"]
    with pytest.raises(CatalogError, match=r"police_zones\[0\]: missing key\(s\) municipalities"):
        load_catalog(write(tmp_path, data))


def test_missing_bounds_key(tmp_path: Path) -> None:
    data = mutated()
    del data["bounds"]["max_lon"]
    with pytest.raises(CatalogError, match=r"bounds: missing key\(s\) max_lon"):
        load_catalog(write(tmp_path, data))


def test_duplicate_municipality_code(tmp_path: Path) -> None:
    data = mutated()
    data["municipalities"].append({"code": "B", "name": "Beta bis", "names": {"en": "Beta bis"}})
    with pytest.raises(CatalogError, match=r"municipalities\[3\]: duplicate municipality 'B'"):
        load_catalog(write(tmp_path, data))


def test_duplicate_zone_code(tmp_path: Path) -> None:
    data = mutated()
    data["police_zones"][1]["code"] = "Z1"
    with pytest.raises(CatalogError, match=r"police_zones\[1\]: duplicate police zone 'Z1'"):
        load_catalog(write(tmp_path, data))


def test_zone_with_unknown_municipality(tmp_path: Path) -> None:
    data = mutated()
    data["police_zones"][1]["municipalities"].append("X")
    with pytest.raises(CatalogError, match="police zone 'Z2': unknown municipality 'X'"):
        load_catalog(write(tmp_path, data))


def test_municipality_in_no_zone(tmp_path: Path) -> None:
    data = mutated()
    data["police_zones"][0]["municipalities"] = ["A"]
    with pytest.raises(CatalogError, match="in no police zone: B"):
        load_catalog(write(tmp_path, data))


def test_municipality_in_two_zones(tmp_path: Path) -> None:
    data = mutated()
    data["police_zones"][1]["municipalities"].append("A")
    with pytest.raises(CatalogError, match="municipality 'A': in two police zones, 'Z1' and 'Z2'"):
        load_catalog(write(tmp_path, data))


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"min_lat": 51.0, "max_lat": 50.0}, "inverted, min_lat=51.0 >= max_lat=50.0"),
        ({"min_lon": 5.0, "max_lon": 4.0}, "inverted, min_lon=5.0 >= max_lon=4.0"),
        ({"min_lat": 50.0, "max_lat": 50.0}, "inverted, min_lat=50.0 >= max_lat=50.0"),
        ({"max_lat": 91.0}, r"bounds.max_lat: expected a number within \[-90, 90\], got 91.0"),
        ({"min_lat": -90.5}, r"bounds.min_lat: .* got -90.5"),
        ({"min_lon": -181}, r"bounds.min_lon: expected a number within \[-180, 180\]"),
        ({"max_lon": 180.5}, r"bounds.max_lon: .* got 180.5"),
        ({"max_lon": "5.0"}, r"bounds.max_lon: .* got '5.0'"),
        ({"max_lon": True}, r"bounds.max_lon: .* got True"),
    ],
)
def test_bad_bounds(tmp_path: Path, bounds: dict[str, Any], message: str) -> None:
    data = mutated()
    data["bounds"].update(bounds)
    with pytest.raises(CatalogError, match=message):
        load_catalog(write(tmp_path, data))


@pytest.mark.parametrize("key", ["municipalities", "police_zones"])
def test_empty_catalog(tmp_path: Path, key: str) -> None:
    with pytest.raises(CatalogError, match=f"{key}: expected a non-empty list, got \\[\\]"):
        load_catalog(write(tmp_path, mutated(**{key: []})))


def test_empty_zone(tmp_path: Path) -> None:
    data = mutated()
    data["police_zones"][1]["municipalities"] = []
    with pytest.raises(CatalogError, match="police zone 'Z2': expected a non-empty list"):
        load_catalog(write(tmp_path, data))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "euro"}, "currency: 'euro' is not ISO 4217"),
        ({"timezone": "Brussels time"}, "timezone: 'Brussels time' not IANA"),
        ({"catalog_id": ""}, "catalog_id: expected a non-empty str, got ''"),
        ({"name": 42}, "name: expected a non-empty str, got 42"),
    ],
)
def test_bad_top_level_values(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        load_catalog(write(tmp_path, mutated(**changes)))


def test_bad_municipality_entries(tmp_path: Path) -> None:
    data = mutated()
    data["municipalities"][0]["code"] = 21001
    with pytest.raises(CatalogError, match=r"municipalities\[0\].code: .*got 21001"):
        load_catalog(write(tmp_path, data))
    data = mutated()
    data["municipalities"][2]["names"] = {}
    with pytest.raises(CatalogError, match="municipality 'C' names: expected a non-empty object"):
        load_catalog(write(tmp_path, data))
    data = mutated()
    data["municipalities"][2]["names"] = {"en": "  "}
    with pytest.raises(CatalogError, match=r"municipality 'C' names.en: .*got '  '"):
        load_catalog(write(tmp_path, data))


def test_error_message_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, mutated(currency="eur"), "named.json")
    with pytest.raises(CatalogError, match=r"catalog file '.*named.json': currency"):
        load_catalog(path)


def test_catalog_error_is_a_value_error() -> None:
    assert issubclass(CatalogError, ValueError)
