"""What the application returns to its callers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True)
class WriteResult:
    """Where an accepted write landed: the aggregate, its new version and the log position."""

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = False


@dataclass(frozen=True)
class WriteContext:
    """Request-level facts that travel with a command into its events' metadata."""

    request_id: str
    expected_version: int | None = None
    actor: str = ""
    correlation_id: str = ""
    causation_id: str = ""
    trace_id: str = ""
    """The trace id of the call's server span (32 hex digits) when tracing is on, else ""."""

    def metadata(self) -> Mapping[str, str]:
        """Return the metadata stamped on every event of the request.

        "trace_id" is there only when the request was traced.
        """
        stamped = {
            "actor": self.actor,
            "correlation_id": self.correlation_id or self.request_id,
            "causation_id": self.causation_id or self.request_id,
            "request_id": self.request_id,
        }
        if self.trace_id:
            stamped["trace_id"] = self.trace_id
        return stamped


@dataclass(frozen=True)
class RecordedEvent:
    """A stored domain event with its position in the log."""

    position: int
    event: object = field(repr=False)
