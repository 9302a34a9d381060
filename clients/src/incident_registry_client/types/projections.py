"""Projections (read models) as operators see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class ProjectionState(Enum):
    """What a projection is doing."""

    RUNNING = "running"
    PAUSED = "paused"
    FAULTED = "faulted"


@dataclass(frozen=True)
class ProjectionInfo:
    """One projection: its state, position, the head of the log and its lag."""

    name: str
    description: str
    state: ProjectionState
    error: str
    position: int
    start_position: int
    head: int
    lag_events: int
    lag: timedelta
    applied_here: bool
    updated_at: datetime | None
