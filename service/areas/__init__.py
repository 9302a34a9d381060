"""Area catalogs: the municipalities, police zones and bounds a registry deployment covers."""

from service.areas.catalog import (
    BUNDLED_CATALOGS,
    AreaCatalog,
    Bounds,
    CatalogError,
    Municipality,
    PoliceZone,
    UnknownAreaError,
    default_catalog,
    load_catalog,
)

__all__ = [
    "BUNDLED_CATALOGS",
    "AreaCatalog",
    "Bounds",
    "CatalogError",
    "Municipality",
    "PoliceZone",
    "UnknownAreaError",
    "default_catalog",
    "load_catalog",
]
