"""The field kinds of a CSV mapping: texts, numbers, flags and times read from a row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from typing import Any

from incident_registry_client import TimePrecision
from incident_registry_client.cli.parsing import zone


class MappingError(ValueError):
    """Raised when a mapping file is malformed: it names the field and what is expected."""


class RowError(ValueError):
    """Raised when a row cannot be read as the mapping says; names the column."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"column {column}: {reason}")
        self.column = column
        self.reason = reason


class Reader:
    """A row's values by column, with the mapping's null values read as missing."""

    def __init__(self, row: dict[str, str], nulls: frozenset[str]) -> None:
        self.row = row
        self.nulls = nulls

    def optional(self, column: str) -> str | None:
        """The value of `column`, or None when it is null; RowError when there is no column."""
        if column not in self.row:
            raise RowError(column, "no such column in the file")
        value = (self.row[column] or "").strip()
        return None if value in self.nulls else value

    def required(self, column: str) -> str:
        """The value of `column`; RowError when it is null."""
        value = self.optional(column)
        if value is None:
            raise RowError(column, "is empty")
        return value


class _Row(dict[str, str]):
    """A row for str.format_map: null values are empty, a missing column is an error."""

    def __init__(self, read: Reader) -> None:
        super().__init__({k: v for k, v in read.row.items() if k is not None})
        self.read = read

    def __getitem__(self, column: str) -> str:
        return self.read.optional(column) or ""


@dataclass(frozen=True)
class TextSpec:
    """A text: a column's value, a template over the row's columns, or a constant."""

    column: str | None = None
    template: str | None = None
    value: str = ""

    def text(self, read: Reader) -> str:
        """The text of a row."""
        if self.column is not None:
            return read.optional(self.column) or ""
        if self.template is not None:
            try:
                return self.template.format_map(_Row(read))
            except (ValueError, IndexError) as err:
                raise RowError(self.template, f"bad template ({err})") from None
        return self.value


@dataclass(frozen=True)
class TimeSpec:
    """A time: a column in `format` (ISO 8601 when None) and `timezone` when naive.

    With `hour_column`, a date gets its hour from that column (precision HOUR) where the
    column has a value, and `default_hour` (keeping `precision`) where it has none.
    """

    column: str
    format: str | None
    timezone: tzinfo
    precision: TimePrecision
    hour_column: str | None = None
    default_hour: int = 0

    def read(self, read: Reader) -> tuple[datetime, TimePrecision]:
        """The aware time of a row and its precision."""
        text = read.required(self.column)
        try:
            value = (
                datetime.strptime(text, self.format)
                if self.format
                else datetime.fromisoformat(text)
            )
        except ValueError as err:
            expected = self.format or "ISO 8601"
            msg = f"{text!r} is not a time in {expected} ({err})"
            raise RowError(self.column, msg) from None
        precision = self.precision
        if self.hour_column is not None:
            hour_text = read.optional(self.hour_column)
            if hour_text is None:
                value = datetime.combine(value.date(), time(self.default_hour), value.tzinfo)
            else:
                try:
                    hour = int(hour_text)
                    value = datetime.combine(value.date(), time(hour), value.tzinfo)
                except ValueError:
                    raise RowError(self.hour_column, f"{hour_text!r} is not an hour 0-23") from None
                precision = TimePrecision.HOUR
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.timezone)
        return value, precision


def _precision_of(format_: str | None) -> TimePrecision:
    if format_ is None or "%M" in format_:
        return TimePrecision.MINUTE
    return TimePrecision.HOUR if "%H" in format_ or "%I" in format_ else TimePrecision.DAY


def time_spec(name: str, spec: Any, default_timezone: tzinfo) -> TimeSpec:
    """A time field of the mapping."""
    if not isinstance(spec, dict) or "column" not in spec:
        msg = f"{name} needs 'column' (with 'format' and 'timezone' as needed)"
        raise MappingError(msg)
    format_ = spec.get("format")
    try:
        precision = TimePrecision(spec.get("precision", _precision_of(format_).value))
    except ValueError:
        msg = f"{name}.precision is one of {', '.join(p.value for p in TimePrecision)}"
        raise MappingError(msg) from None
    timezone = zone(spec["timezone"]) if "timezone" in spec else default_timezone
    default_hour = int(spec.get("default_hour", 0))
    if not 0 <= default_hour <= 23:
        msg = f"{name}.default_hour is 0-23"
        raise MappingError(msg)
    hour_column = spec.get("hour_column")
    return TimeSpec(spec["column"], format_, timezone, precision, hour_column, default_hour)


def text_spec(name: str, spec: Any) -> TextSpec:
    """A text field of the mapping."""
    if spec is None:
        return TextSpec()
    if isinstance(spec, str):
        return TextSpec(template=spec)
    if isinstance(spec, dict) and {"column", "template", "value"} & set(spec):
        return TextSpec(spec.get("column"), spec.get("template"), str(spec.get("value", "")))
    msg = f"{name} needs 'column', 'template' or 'value'"
    raise MappingError(msg)


def int_spec(name: str, spec: Any) -> Callable[[Reader], int] | None:
    """A whole-number field: {"column", "default"} (null values read as the default) or "value"."""
    if spec is None:
        return None
    if isinstance(spec, dict) and "value" in spec:
        constant = int(spec["value"])
        return lambda _: constant
    if not isinstance(spec, dict) or "column" not in spec:
        msg = f"{name} needs 'column' or 'value'"
        raise MappingError(msg)
    column, default = spec["column"], int(spec.get("default", 0))

    def read(row: Reader) -> int:
        text = row.optional(column)
        try:
            return default if text is None else int(text)
        except ValueError:
            raise RowError(column, f"{text!r} is not a whole number") from None

    return read


def bool_spec(name: str, spec: Any) -> Callable[[Reader], bool] | None:
    """A yes/no field: {"column", "true_values"} or {"value"}."""
    if spec is None:
        return None
    if isinstance(spec, dict) and "value" in spec:
        constant = bool(spec["value"])
        return lambda _: constant
    if not isinstance(spec, dict) or "column" not in spec:
        msg = f"{name} needs 'column' or 'value'"
        raise MappingError(msg)
    column = spec["column"]
    truths = {str(v).lower() for v in spec.get("true_values", ["1", "true", "yes", "y"])}
    return lambda row: (row.optional(column) or "").lower() in truths
