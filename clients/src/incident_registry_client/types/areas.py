"""Kinds of areas and periods that read models group by."""

from __future__ import annotations

from enum import Enum


class AreaKind(Enum):
    """The kind of area: a municipality or a police zone of the area catalog."""

    MUNICIPALITY = "municipality"
    POLICE_ZONE = "police_zone"


class PeriodKind(Enum):
    """The kind of period, in the catalog's time zone.

    Periods are written "2024-06-01" (day), "2024-W22" (ISO week), "2024-06" (month), "2024".
    """

    DAY = "day"
    ISO_WEEK = "iso_week"
    MONTH = "month"
    YEAR = "year"
