"""One exception hierarchy for failed calls, mapped from gRPC status codes by one function.

Every failed call raises a `RegistryError` subclass chosen by the status code, carrying what
the server's google.rpc details say (field violations, the missing resource, the broken
rule, the versions of a conflict, when to retry). Arguments the client itself can tell are
wrong (a naive datetime, two mutually exclusive options) raise ValueError before any call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar
from uuid import UUID

import grpc

from incident_registry_client._status import (
    FieldViolation,
    PreconditionViolation,
    StatusDetails,
    parse_details,
)

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CallCancelledError",
    "ConcurrentModificationError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "ImportConflict",
    "ImportConflictError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PreconditionViolation",
    "RegistryError",
    "ResourceExhaustedError",
    "StatusDetails",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "VersionConflictError",
    "handle_rpc_error",
]


class RegistryError(Exception):
    """Base class of every error raised for a failed call; `code` is its gRPC status code."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, details: StatusDetails | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or StatusDetails()

    @property
    def reason(self) -> str:
        """The ErrorInfo reason the server gave (e.g. "VERSION_CONFLICT"), "" without one."""
        info = self.details.error_info
        return info.reason if info is not None else ""

    @property
    def error_metadata(self) -> Mapping[str, str]:
        """The ErrorInfo metadata the server gave, empty without one."""
        info = self.details.error_info
        return info.metadata if info is not None else {}


class InvalidArgumentError(RegistryError):
    """Raised when fields of a request are invalid; `field_violations` names every one."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        """Each invalid field (e.g. "weapons[0].count") and what is wrong with it."""
        return self.details.field_violations


class NotFoundError(RegistryError):
    """Raised when a named incident, gang, command, case or projection does not exist."""

    code = grpc.StatusCode.NOT_FOUND

    @property
    def resource_type(self) -> str:
        """The kind of the missing resource, e.g. "incident"."""
        info = self.details.resource_info
        return info.resource_type if info is not None else ""

    @property
    def resource_name(self) -> str:
        """The id or name of the missing resource."""
        info = self.details.resource_info
        return info.resource_name if info is not None else ""


class AlreadyExistsError(RegistryError):
    """Raised when a request id was already used for a different request."""

    code = grpc.StatusCode.ALREADY_EXISTS

    @property
    def request_id(self) -> str:
        """The reused request id ("" when the server did not say)."""
        return self.error_metadata.get("request_id", "")


class FailedPreconditionError(RegistryError):
    """Raised when a write would break a domain rule, or a read model is stopped."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    @property
    def violations(self) -> tuple[PreconditionViolation, ...]:
        """The broken rules."""
        return self.details.precondition_violations

    @property
    def rule(self) -> str:
        """The name of the (first) broken rule, "" when the server did not say."""
        return self.violations[0].type if self.violations else ""

    @property
    def subject(self) -> str:
        """What the (first) broken rule concerns, e.g. "incident/<id>"."""
        return self.violations[0].subject if self.violations else ""


class AbortedError(RegistryError):
    """Raised when a write was aborted by a concurrent change; see the subclasses."""

    code = grpc.StatusCode.ABORTED


class VersionConflictError(AbortedError):
    """Raised when a write's expected_version differs from the aggregate's actual version."""

    @property
    def aggregate_id(self) -> UUID | None:
        """The aggregate whose version differed."""
        value = self.error_metadata.get("aggregate_id", "")
        return UUID(value) if value else None

    @property
    def expected_version(self) -> int:
        """The version the write expected."""
        return int(self.error_metadata.get("expected_version", "0"))

    @property
    def actual_version(self) -> int:
        """The aggregate's version when the write was decided."""
        return int(self.error_metadata.get("actual_version", "0"))


class ConcurrentModificationError(AbortedError):
    """Raised when a write kept losing races with concurrent writers; retrying it is safe."""

    @property
    def subject(self) -> str:
        """What the writes raced on."""
        return self.error_metadata.get("subject", "")


@dataclass(frozen=True)
class ImportConflict:
    """An imported event (at `index` of its batch) whose stream version holds another event."""

    index: int
    stream_id: str
    stream_version: int
    existing_position: int


class ImportConflictError(AbortedError):
    """Raised when imported events differ from those already at their stream versions.

    Nothing was imported; `conflicts` lists the first few, `total` counts them all.
    """

    @property
    def conflicts(self) -> tuple[ImportConflict, ...]:
        """The conflicting events the server named."""
        return tuple(
            ImportConflict(
                index=int(info.metadata.get("index", "0")),
                stream_id=info.metadata.get("stream_id", ""),
                stream_version=int(info.metadata.get("stream_version", "0")),
                existing_position=int(info.metadata.get("existing_position", "0")),
            )
            for info in self.details.error_infos
            if info.reason == "IMPORT_CONFLICT"
        )

    @property
    def total(self) -> int:
        """How many imported events conflict."""
        return int(self.error_metadata.get("conflicts", str(len(self.conflicts))))


class OutOfRangeError(RegistryError):
    """Raised when a read starts beyond the end of the log or of a stream."""

    code = grpc.StatusCode.OUT_OF_RANGE

    @property
    def field(self) -> str:
        """The field that is out of range, e.g. "min_position"."""
        violations = self.details.field_violations
        return violations[0].field if violations else ""


class ResourceExhaustedError(RegistryError):
    """Raised when a subscriber or watcher read nothing for too long, or a limit was hit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(RegistryError):
    """Raised when the server or its store cannot be reached, or a read model is behind.

    The client retries these itself (a bounded number of times) before raising.
    """

    code = grpc.StatusCode.UNAVAILABLE

    @property
    def retry_after(self) -> timedelta | None:
        """How long the server asked the client to wait before retrying, if it said."""
        return self.details.retry_delay


class DeadlineExceededError(RegistryError):
    """Raised when a call's deadline passed before it completed (a write may have landed)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnauthenticatedError(RegistryError):
    """Raised when the call's credentials are missing or invalid."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(RegistryError):
    """Raised when the caller may not make the call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class CallCancelledError(RegistryError):
    """Raised when the call was cancelled (by this client, or on its way)."""

    code = grpc.StatusCode.CANCELLED


class UnimplementedError(RegistryError):
    """Raised when the server does not implement the method (an older server)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(RegistryError):
    """Raised when the server failed unexpectedly (it logged the failure)."""

    code = grpc.StatusCode.INTERNAL


class UnknownError(RegistryError):
    """Raised for a status the server did not classify."""

    code = grpc.StatusCode.UNKNOWN


class DataLossError(RegistryError):
    """Raised on unrecoverable data loss or corruption."""

    code = grpc.StatusCode.DATA_LOSS


_BY_CODE: dict[grpc.StatusCode, type[RegistryError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        AbortedError,
        OutOfRangeError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        UnauthenticatedError,
        PermissionDeniedError,
        CallCancelledError,
        UnimplementedError,
        InternalError,
        UnknownError,
        DataLossError,
    )
}
_ABORTED_BY_REASON: dict[str, type[AbortedError]] = {
    "VERSION_CONFLICT": VersionConflictError,
    "CONCURRENT_MODIFICATION": ConcurrentModificationError,
    "IMPORT_CONFLICT": ImportConflictError,
}


def handle_rpc_error(error: grpc.RpcError) -> RegistryError:
    """Return the RegistryError for a failed call (sync or grpc.aio), to raise `from` it."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    message = (error.details() if callable(getattr(error, "details", None)) else None) or ""
    trailing = (
        error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
    )
    details = parse_details(trailing)
    cls = _BY_CODE.get(code, UnknownError)
    if cls is AbortedError:
        cls = _ABORTED_BY_REASON.get(details.error_info.reason if details.error_info else "", cls)
    return cls(message or code.name, details)
