"""One mapping table from domain errors to gRPC status codes with rich error details."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.domain.errors import (
    ConcurrentModificationError,
    ImportConflictError,
    InvalidArgumentError,
    NotCaughtUpError,
    NotFoundError,
    OutOfRangeError,
    RegistryError,
    RequestIdReusedError,
    RuleViolatedError,
    StoreUnavailableError,
    SubscriberTooSlowError,
    VersionConflictError,
)
from service.security.limits import CallTimedOutError, LimitExceededError

DOMAIN = "incidents.v1"
DETAILS_KEY = "grpc-status-details-bin"


def _bad_request(err: RegistryError) -> list[object]:
    assert isinstance(err, InvalidArgumentError)
    return [
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in err.violations
            ]
        )
    ]


def _not_found(err: RegistryError) -> list[object]:
    assert isinstance(err, NotFoundError)
    return [
        error_details_pb2.ResourceInfo(
            resource_type=err.resource_type, resource_name=err.resource_id, description=str(err)
        )
    ]


def _precondition(err: RegistryError) -> list[object]:
    assert isinstance(err, RuleViolatedError)
    return [
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=err.rule, subject=err.subject, description=err.description
                )
            ]
        )
    ]


def _version_conflict(err: RegistryError) -> list[object]:
    assert isinstance(err, VersionConflictError)
    return [
        error_details_pb2.ErrorInfo(
            reason="VERSION_CONFLICT",
            domain=DOMAIN,
            metadata={
                "aggregate_id": err.aggregate_id,
                "expected_version": str(err.expected),
                "actual_version": str(err.actual),
            },
        )
    ]


def _request_reused(err: RegistryError) -> list[object]:
    assert isinstance(err, RequestIdReusedError)
    return [
        error_details_pb2.ErrorInfo(
            reason="REQUEST_ID_REUSED", domain=DOMAIN, metadata={"request_id": err.request_id}
        )
    ]


def _concurrent(err: RegistryError) -> list[object]:
    assert isinstance(err, ConcurrentModificationError)
    return [
        error_details_pb2.ErrorInfo(
            reason="CONCURRENT_MODIFICATION", domain=DOMAIN, metadata={"subject": err.subject}
        )
    ]


def _import_conflict(err: RegistryError) -> list[object]:
    assert isinstance(err, ImportConflictError)
    return [
        error_details_pb2.ErrorInfo(
            reason="IMPORT_CONFLICT",
            domain=DOMAIN,
            metadata={
                "index": str(conflict.index),
                "stream_id": conflict.stream_id,
                "stream_version": str(conflict.stream_version),
                "existing_position": str(conflict.position),
                "conflicts": str(err.total),
            },
        )
        for conflict in err.conflicts
    ]


def _out_of_range(err: RegistryError) -> list[object]:
    assert isinstance(err, OutOfRangeError)
    return [
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=err.field, description=str(err))
            ]
        )
    ]


def _too_slow(_: RegistryError) -> list[object]:
    return [error_details_pb2.ErrorInfo(reason="SUBSCRIBER_TOO_SLOW", domain=DOMAIN)]


def _limit_exceeded(err: RegistryError) -> list[object]:
    assert isinstance(err, LimitExceededError)
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(1, round(err.retry_after * 1e9)))
    return [
        error_details_pb2.RetryInfo(retry_delay=delay),
        error_details_pb2.ErrorInfo(
            reason="LIMIT_EXCEEDED", domain=DOMAIN, metadata={"limit": err.limit}
        ),
    ]


def _no_details(_: RegistryError) -> list[object]:
    return []


def _retry_soon(_: RegistryError) -> list[object]:
    return [error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1))]


ERROR_TABLE: dict[
    type[RegistryError], tuple[grpc.StatusCode, Callable[[RegistryError], list[object]]]
] = {
    InvalidArgumentError: (grpc.StatusCode.INVALID_ARGUMENT, _bad_request),
    NotFoundError: (grpc.StatusCode.NOT_FOUND, _not_found),
    RuleViolatedError: (grpc.StatusCode.FAILED_PRECONDITION, _precondition),
    VersionConflictError: (grpc.StatusCode.ABORTED, _version_conflict),
    ConcurrentModificationError: (grpc.StatusCode.ABORTED, _concurrent),
    ImportConflictError: (grpc.StatusCode.ABORTED, _import_conflict),
    RequestIdReusedError: (grpc.StatusCode.ALREADY_EXISTS, _request_reused),
    OutOfRangeError: (grpc.StatusCode.OUT_OF_RANGE, _out_of_range),
    SubscriberTooSlowError: (grpc.StatusCode.RESOURCE_EXHAUSTED, _too_slow),
    LimitExceededError: (grpc.StatusCode.RESOURCE_EXHAUSTED, _limit_exceeded),
    CallTimedOutError: (grpc.StatusCode.DEADLINE_EXCEEDED, _no_details),
    StoreUnavailableError: (grpc.StatusCode.UNAVAILABLE, _retry_soon),
    NotCaughtUpError: (grpc.StatusCode.UNAVAILABLE, _retry_soon),
}


def status_for(err: RegistryError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """Return the status code, message and trailing metadata (with details) for `err`."""
    for cls in type(err).__mro__:
        if cls in ERROR_TABLE:
            code, details = ERROR_TABLE[cls]
            break
    else:
        code, details = grpc.StatusCode.INTERNAL, lambda _: []
    message = str(err)
    packed = []
    for detail in details(err):
        container = any_pb2.Any()
        container.Pack(detail)  # type: ignore[arg-type]
        packed.append(container)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
    return code, message, ((DETAILS_KEY, status.SerializeToString()),)
