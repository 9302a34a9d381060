"""Field checks shared by the commands: they name the request field that is wrong."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from service.areas import AreaCatalog
from service.domain.errors import FieldViolation, InvalidArgumentError
from service.domain.values import GeoPoint

MAX_TEXT = 500
MAX_LONG_TEXT = 10_000
MAX_ITEMS = 1_000
CLOCK_SKEW = timedelta(minutes=1)


class Violations:
    """Collects every problem of a request, so the caller can fix them all at once."""

    def __init__(self) -> None:
        self._found: list[FieldViolation] = []

    def check(self, ok: bool, field: str, description: str) -> bool:
        """Record a violation of `field` unless `ok`; return `ok`."""
        if not ok:
            self._found.append(FieldViolation(field, description))
        return ok

    def required(self, value: str, field: str, limit: int = MAX_TEXT) -> None:
        """A non-blank text of at most `limit` characters."""
        if self.check(bool(value.strip()), field, "is required"):
            self.text(value, field, limit)

    def text(self, value: str, field: str, limit: int = MAX_TEXT) -> None:
        """An optional text of at most `limit` characters."""
        self.check(len(value) <= limit, field, f"must be at most {limit} characters")

    def count(self, value: int, field: str, minimum: int = 0) -> None:
        """A whole number no less than `minimum`."""
        self.check(value >= minimum, field, f"must be at least {minimum}")

    def aware(self, value: datetime | None, field: str) -> bool:
        """A time that says its time zone (or no time at all)."""
        return self.check(
            value is None or value.utcoffset() is not None, field, "must include a time zone"
        )

    def not_future(self, value: datetime | None, field: str, now: datetime) -> None:
        """A time with a time zone, not in the future (allowing for a little clock skew)."""
        if value is not None and self.aware(value, field):
            self.check(value <= now + CLOCK_SKEW, field, "must not be in the future")

    def municipality(self, code: str, field: str, catalog: AreaCatalog) -> None:
        """A municipality of the area catalog."""
        if self.check(bool(code), field, "is required"):
            self.check(
                catalog.has_municipality(code),
                field,
                f"unknown municipality {code!r} in area catalog {catalog.catalog_id!r}",
            )

    def municipalities(self, codes: Iterable[str], field: str, catalog: AreaCatalog) -> None:
        """Municipalities of the area catalog."""
        for index, code in enumerate(codes):
            self.municipality(code, f"{field}[{index}]", catalog)

    def location(self, point: GeoPoint | None, field: str, catalog: AreaCatalog) -> None:
        """A coordinate inside the catalog's bounds."""
        if point is None:
            return
        finite = math.isfinite(point.latitude) and math.isfinite(point.longitude)
        if self.check(finite, field, "must be finite numbers"):
            self.check(
                catalog.bounds.contains(point.latitude, point.longitude),
                field,
                f"({point.latitude}, {point.longitude}) lies outside the bounds of "
                f"area catalog {catalog.catalog_id!r}",
            )

    def distinct(self, values: Iterable[object], field: str) -> None:
        """No value given twice."""
        seen: set[object] = set()
        for index, value in enumerate(values):
            self.check(value not in seen, f"{field}[{index}]", "is given twice")
            seen.add(value)

    def raise_if_any(self) -> None:
        """Raise InvalidArgumentError listing every violation found."""
        if self._found:
            raise InvalidArgumentError(self._found)
