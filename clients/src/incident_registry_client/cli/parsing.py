"""Reading option values: times, weapons, amounts of money, asset items, request ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from incident_registry_client import AssetItem, AssetKind, Weapon, WeaponKind

E = TypeVar("E", bound=Enum)

_CENTS = Decimal(100)


def zone(name: str) -> tzinfo:
    """A time zone by IANA name ("UTC", "Europe/Brussels")."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {name!r} (an IANA name such as Europe/Brussels, or UTC)"
        raise typer.BadParameter(msg) from None


def when(text: str, timezone: tzinfo) -> datetime:
    """An ISO 8601 time ("2025-02-05T06:10", "...Z", "...+01:00") or "now".

    A time without an offset is in `timezone` (the --tz option).
    """
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{text!r} is not an ISO 8601 time such as 2025-02-05T06:10 or 2025-02-05T05:10Z"
        raise typer.BadParameter(msg) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone)


def optional_when(text: str | None, timezone: tzinfo) -> datetime | None:
    """`when`, or None when the option was not given."""
    return None if text is None else when(text, timezone)


def choice(enum: type[E], text: str) -> E:
    """An enum member by its value, with the choices listed when it is not one."""
    try:
        return enum(text.strip().lower())
    except ValueError:
        choices = ", ".join(str(member.value) for member in enum)
        msg = f"{text!r} is not one of {choices}"
        raise typer.BadParameter(msg) from None


def weapon(text: str) -> Weapon:
    """KIND[:COUNT], e.g. "assault_rifle:2"."""
    kind, _, count = text.partition(":")
    try:
        number = int(count) if count else 1
    except ValueError:
        msg = f"{text!r}: the count after ':' is a whole number"
        raise typer.BadParameter(msg) from None
    return Weapon(choice(WeaponKind, kind), number)


def cents(text: str) -> int:
    """An amount in currency units ("50000", "1,250.50") as minor units (cents)."""
    try:
        amount = Decimal(text.replace(",", "").replace("_", "").strip())
    except InvalidOperation:
        msg = f"{text!r} is not an amount such as 1250.50"
        raise typer.BadParameter(msg) from None
    value = amount * _CENTS
    if value != value.to_integral_value():
        msg = f"{text!r} has more than two decimals"
        raise typer.BadParameter(msg)
    return int(value)


_ITEM = re.compile(r"^(?P<kind>[a-z_]+):(?P<value>[0-9.,_]+)(?::(?P<description>.*))?$")


def asset_item(text: str) -> AssetItem:
    """KIND:VALUE[:DESCRIPTION], e.g. "vehicle:95000:luxury car" (value in currency units)."""
    match = _ITEM.match(text.strip())
    if match is None:
        msg = f"{text!r} is not KIND:VALUE[:DESCRIPTION], e.g. cash:50000:banknotes"
        raise typer.BadParameter(msg)
    return AssetItem(
        kind=choice(AssetKind, match["kind"]),
        estimated_value_cents=cents(match["value"]),
        description=match["description"] or "",
    )
