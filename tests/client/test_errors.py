"""Each status code becomes the matching exception, with the details the server sent."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from incident_registry_client import (
    NO_RETRY,
    AbortedError,
    AlreadyExistsError,
    AreaKind,
    CallCancelledError,
    ConcurrentModificationError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PeriodKind,
    PermissionDeniedError,
    RegistryClient,
    RegistryError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
    VersionConflictError,
    Weapon,
    WeaponKind,
    handle_rpc_error,
)
from incident_registry_client.errors import ImportConflictError

from tests.client.conftest import hours_ago, report
from tests.client.proxy import Abort

EXCEPTIONS: dict[grpc.StatusCode, type[RegistryError]] = {
    grpc.StatusCode.CANCELLED: CallCancelledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def details_metadata(*details) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying google.rpc details, as the server packs them."""
    packed = []
    for detail in details:
        container = any_pb2.Any()
        container.Pack(detail)
        packed.append(container)
    status = status_pb2.Status(code=10, message="m", details=packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


@pytest.fixture
def no_retry(proxy):
    with RegistryClient(proxy.target, retry=NO_RETRY) as registry:
        yield registry


@pytest.mark.parametrize("code", sorted(EXCEPTIONS, key=str))
def test_every_status_code_raises_its_exception(proxy, no_retry, code):
    proxy.fail("GetHead", Abort(code, f"the {code.name} message"))
    with pytest.raises(RegistryError) as raised:
        no_retry.get_head()
    assert type(raised.value) is EXCEPTIONS[code]
    assert raised.value.code == code
    assert raised.value.message == f"the {code.name} message"
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_every_status_code_but_ok_has_an_exception():
    assert set(EXCEPTIONS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


def test_invalid_argument_names_every_field(client):
    with pytest.raises(InvalidArgumentError) as raised:
        report(client, municipality_code="99999", weapons=[Weapon(WeaponKind.HANDGUN, 0)])
    fields = {v.field for v in raised.value.field_violations}
    assert fields == {"municipality_code", "weapons[0].count"}
    assert all(
        isinstance(v, FieldViolation) and v.description for v in raised.value.field_violations
    )


def test_not_found_names_the_resource(client):
    missing = uuid4()
    with pytest.raises(NotFoundError) as raised:
        client.get_gang(gang_id=missing)
    assert (raised.value.resource_type, raised.value.resource_name) == ("gang", str(missing))


def test_failed_precondition_names_the_rule_and_subject(client):
    incident_id = report(client).aggregate_id
    gang_id = client.register_gang(name="Clan X").aggregate_id
    with pytest.raises(FailedPreconditionError) as raised:
        client.retract_attribution(incident_id=incident_id, gang_id=gang_id, reason="never was")
    assert raised.value.rule
    assert str(incident_id) in raised.value.subject or str(gang_id) in raised.value.subject


def test_version_conflict_gives_expected_and_actual_versions(client):
    incident_id = report(client).aggregate_id
    with pytest.raises(VersionConflictError) as raised:
        client.revise_casualties(
            incident_id=incident_id, killed=1, injured=0, reason="r", expected_version=3
        )
    error = raised.value
    assert isinstance(error, AbortedError)
    assert (error.expected_version, error.actual_version) == (3, 1)
    assert error.aggregate_id == incident_id
    assert error.reason == "VERSION_CONFLICT"


def test_a_reused_request_id_is_already_exists(client):
    report(client, request_id="key-1")
    with pytest.raises(AlreadyExistsError) as raised:
        report(client, request_id="key-1", killed=3)
    assert raised.value.request_id == "key-1"


def test_out_of_range_names_the_field(client):
    with pytest.raises(OutOfRangeError) as raised:
        client.get_area_statistics(
            area_kind=AreaKind.MUNICIPALITY, period_kind=PeriodKind.MONTH, min_position=42
        )
    assert raised.value.field == "min_position"


def test_unavailable_says_when_to_retry(proxy, no_retry):
    retry_info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1))
    proxy.fail("GetHead", Abort(trailing=details_metadata(retry_info)))
    with pytest.raises(UnavailableError) as raised:
        no_retry.get_head()
    assert raised.value.retry_after == timedelta(seconds=1)


def test_aborted_reasons_choose_the_subclass(proxy, no_retry):
    concurrent = error_details_pb2.ErrorInfo(
        reason="CONCURRENT_MODIFICATION", domain="incidents.v1", metadata={"subject": "slot/21001"}
    )
    conflicts = [
        error_details_pb2.ErrorInfo(
            reason="IMPORT_CONFLICT",
            domain="incidents.v1",
            metadata={
                "index": str(index),
                "stream_id": str(UUID(int=index)),
                "stream_version": "1",
                "existing_position": str(10 + index),
                "conflicts": "5",
            },
        )
        for index in (0, 3)
    ]
    proxy.fail(
        "GetHead",
        Abort(grpc.StatusCode.ABORTED, trailing=details_metadata(concurrent)),
        Abort(grpc.StatusCode.ABORTED, trailing=details_metadata(*conflicts)),
        Abort(grpc.StatusCode.ABORTED),
    )
    with pytest.raises(ConcurrentModificationError) as raised:
        no_retry.get_head()
    assert raised.value.subject == "slot/21001"
    with pytest.raises(ImportConflictError) as conflict:
        no_retry.get_head()
    assert [c.index for c in conflict.value.conflicts] == [0, 3]
    assert conflict.value.conflicts[1].existing_position == 13
    assert conflict.value.total == 5
    with pytest.raises(AbortedError) as bare:
        no_retry.get_head()
    assert type(bare.value) is AbortedError


def test_resource_exhausted_gives_the_reason(proxy, no_retry):
    info = error_details_pb2.ErrorInfo(reason="SUBSCRIBER_TOO_SLOW", domain="incidents.v1")
    proxy.fail(
        "GetHead", Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, trailing=details_metadata(info))
    )
    with pytest.raises(ResourceExhaustedError) as raised:
        no_retry.get_head()
    assert raised.value.reason == "SUBSCRIBER_TOO_SLOW"


def test_handle_rpc_error_reads_grpc_aio_errors_too():
    info = error_details_pb2.ErrorInfo(
        reason="VERSION_CONFLICT",
        metadata={"aggregate_id": str(UUID(int=1)), "expected_version": "2", "actual_version": "4"},
    )
    aio_error = grpc.aio.AioRpcError(
        grpc.StatusCode.ABORTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*details_metadata(info)),
        details="version conflict",
    )
    error = handle_rpc_error(aio_error)
    assert isinstance(error, VersionConflictError)
    assert (error.expected_version, error.actual_version) == (2, 4)


def test_undecodable_details_are_ignored_not_fatal():
    aio_error = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", b"\xff\xfe not a status")),
        details="bad",
    )
    error = handle_rpc_error(aio_error)
    assert isinstance(error, InvalidArgumentError)
    assert error.field_violations == ()


def test_naive_datetimes_are_refused_before_any_call(client):
    with pytest.raises(ValueError, match="naive"):
        report(client, occurred_at=hours_ago(1).replace(tzinfo=None))
