"""What batched writes share: bounded lists of violations."""

from __future__ import annotations

from collections.abc import Iterable

from service.domain.errors import FieldViolation

MAX_LISTED = 20
"""Violations listed in one error: the details travel in a size-limited trailer."""


def listed(violations: Iterable[FieldViolation], field: str) -> list[FieldViolation]:
    """The first violations (each once), and how many more there are, named after `field`."""
    found = list(dict.fromkeys(violations))
    if len(found) <= MAX_LISTED:
        return found
    more = FieldViolation(field, f"{len(found) - MAX_LISTED} more violations are not listed")
    return [*found[:MAX_LISTED], more]
