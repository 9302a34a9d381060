"""Gangs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class Gang:
    """The current state of a registered gang."""

    gang_id: UUID
    version: int
    name: str
    aliases: tuple[str, ...]
    territory_municipality_codes: tuple[str, ...]
    territory_description: str
    recorded_at: datetime | None
    updated_at: datetime | None
