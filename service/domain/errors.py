"""Domain errors: one hierarchy, mapped to gRPC status codes at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RegistryError(Exception):
    """Base class of every error the registry reports to its callers."""


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path and what is wrong with it."""

    field: str
    description: str


class InvalidArgumentError(RegistryError):
    """Raised when a request has invalid field values; nothing is written."""

    def __init__(self, violations: list[FieldViolation] | tuple[FieldViolation, ...]) -> None:
        self.violations = tuple(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {summary}")


class NotFoundError(RegistryError):
    """Raised when a named aggregate does not exist."""

    def __init__(self, resource_type: str, resource_id: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        super().__init__(f"{resource_type} {resource_id} not found")


class RuleViolatedError(RegistryError):
    """Raised when a write would break a domain rule given the current state."""

    def __init__(self, rule: str, subject: str, description: str) -> None:
        self.rule = rule
        self.subject = subject
        self.description = description
        super().__init__(description)


class VersionConflictError(RegistryError):
    """Raised when a write's expected version differs from the aggregate's version."""

    def __init__(self, aggregate_id: str, expected: int, actual: int) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"version conflict on {aggregate_id}: expected version {expected}, actual {actual}"
        )


class RequestIdReusedError(RegistryError):
    """Raised when a request id was already used for a different request."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"request_id {request_id!r} was already used for a different request; "
            "use a new request_id for a new request"
        )


class OutOfRangeError(RegistryError):
    """Raised when a read starts beyond the end of the log or of a stream."""

    def __init__(self, field: str, description: str) -> None:
        self.field = field
        super().__init__(f"{field} {description}")


class NotCaughtUpError(RegistryError):
    """Raised when a read model did not reach the requested position in time; retry."""


class SubscriberTooSlowError(RegistryError):
    """Raised when a subscriber stopped reading and its stream is ended to bound memory."""


class StoreUnavailableError(RegistryError):
    """Raised when the event store cannot be reached or is shutting down; safe to retry."""


class ConcurrentModificationError(RegistryError):
    """Raised when a write kept losing races with concurrent writers; safe to retry."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"{subject} kept conflicting with concurrent writes; retry it")


@dataclass(frozen=True)
class ImportConflict:
    """An imported event (at `index` in its batch) whose stream version holds another event."""

    index: int
    stream_id: str
    stream_version: int
    position: int
    """Where the event already at that stream version is in the log."""


class ImportConflictError(RegistryError):
    """Raised when imported events differ from the events already at their stream versions."""

    def __init__(self, conflicts: Sequence[ImportConflict], total: int) -> None:
        self.conflicts = tuple(conflicts)
        self.total = total
        first = self.conflicts[0]
        super().__init__(
            f"{total} imported event(s) conflict with the log: events[{first.index}] "
            f"({first.stream_id} version {first.stream_version}) differs from the event "
            f"already at position {first.position}; nothing was imported"
        )
