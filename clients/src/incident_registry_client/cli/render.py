"""Turning the client's dataclasses into JSON values and rich tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from uuid import UUID

from rich.table import Table
from rich.text import Text


def jsonable(value: Any) -> Any:  # noqa: PLR0911 - one branch per kind of value
    """A JSON-ready copy of `value`: dataclasses as objects, enums by value, times in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def text(value: Any) -> str:  # noqa: PLR0911 - one branch per kind of value
    """A short form of a value for a table cell."""
    if value is None:
        return "—"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) if value else "—"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return " ".join(text(getattr(value, f.name)) for f in dataclasses.fields(value))
    return str(value)


def money(cents: int, currency: str = "") -> str:
    """Minor units as an amount with two decimals and thousands separators."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{rest:02d}" + (f" {currency}" if currency else "")


def fields_table(title: str, value: Any, *, skip: Iterable[str] = ()) -> Table:
    """A two-column table of a dataclass's fields."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    skipped = set(skip)
    for field in dataclasses.fields(value):
        if field.name not in skipped:
            table.add_row(field.name, Text(text(getattr(value, field.name))))
    return table


def rows_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: int = 0
) -> Table:
    """A table with `columns`; the last `numeric` columns are right-aligned."""
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        right = index >= len(columns) - numeric
        whole = column.endswith("id")  # ids stay on one line
        table.add_column(
            column, justify="right" if right else "left", overflow="fold", no_wrap=whole
        )
    for row in rows:
        table.add_row(*(Text(text(cell)) for cell in row))  # data, never markup
    return table
