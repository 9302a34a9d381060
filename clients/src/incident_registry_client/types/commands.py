"""Unified police commands and the command each municipality is under."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from uuid import UUID


class CommandStatus(Enum):
    """The lifecycle state of a unified police command."""

    ACTIVE = "active"
    ENDED = "ended"


@dataclass(frozen=True)
class UnifiedCommand:
    """A temporary single command over several municipalities' police."""

    command_id: UUID
    version: int
    status: CommandStatus
    municipality_codes: tuple[str, ...]
    police_zone_codes: tuple[str, ...]
    lead_authority: str
    reason: str
    starts_at: datetime | None
    planned_end_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    triggering_incident_ids: tuple[UUID, ...]
    recorded_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class MunicipalityCommand:
    """A municipality of the catalog and the command it is under now (None when none)."""

    municipality_code: str
    municipality_name: str
    police_zone_code: str
    active_command: UnifiedCommand | None


@dataclass(frozen=True)
class MunicipalityCommands:
    """The selected municipalities, by code, and the log position the read model reflects."""

    municipalities: tuple[MunicipalityCommand, ...]
    position: int
