"""Decoding of `grpc-status-details-bin`: google.rpc.Status and the details the server sends.

The client depends on grpcio and protobuf only, so it cannot import googleapis-common-protos.
The few google.rpc messages it reads are declared here, in a descriptor pool of their own
(so they never clash with googleapis-common-protos when both are installed), with the field
numbers of google/rpc/status.proto and google/rpc/error_details.proto.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, text_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

DETAILS_KEY = "grpc-status-details-bin"
_TYPE_PREFIX = "type.googleapis.com/"

_FILE = """
name: "incident_registry_client/google_rpc_subset.proto"
package: "google.rpc"
dependency: "google/protobuf/any.proto"
dependency: "google/protobuf/duration.proto"
syntax: "proto3"
message_type {
  name: "Status"
  field { name: "code" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "message" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field {
    name: "details" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE
    type_name: ".google.protobuf.Any"
  }
}
message_type {
  name: "BadRequest"
  field {
    name: "field_violations" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
    type_name: ".google.rpc.BadRequest.FieldViolation"
  }
  nested_type {
    name: "FieldViolation"
    field { name: "field" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "description" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
}
message_type {
  name: "ResourceInfo"
  field { name: "resource_type" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "resource_name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "owner" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "description" number: 4 label: LABEL_OPTIONAL type: TYPE_STRING }
}
message_type {
  name: "PreconditionFailure"
  field {
    name: "violations" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
    type_name: ".google.rpc.PreconditionFailure.Violation"
  }
  nested_type {
    name: "Violation"
    field { name: "type" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "subject" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "description" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
}
message_type {
  name: "ErrorInfo"
  field { name: "reason" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "domain" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field {
    name: "metadata" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE
    type_name: ".google.rpc.ErrorInfo.MetadataEntry"
  }
  nested_type {
    name: "MetadataEntry"
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
    options { map_entry: true }
  }
}
message_type {
  name: "RetryInfo"
  field {
    name: "retry_delay" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
    type_name: ".google.protobuf.Duration"
  }
}
"""


def _message_classes() -> dict[str, type[Message]]:
    pool = descriptor_pool.DescriptorPool()
    for dependency in (any_pb2, duration_pb2):
        pool.AddSerializedFile(dependency.DESCRIPTOR.serialized_pb)
    file = text_format.Parse(_FILE, descriptor_pb2.FileDescriptorProto())
    pool.Add(file)
    names = [message.name for message in file.message_type]
    return {
        name: GetMessageClass(pool.FindMessageTypeByName(f"google.rpc.{name}")) for name in names
    }


_CLASSES = _message_classes()


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request (e.g. "weapons[0].count") and what is wrong with it."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """A broken rule: its name (`type`), the subject it concerns and a description."""

    type: str
    subject: str
    description: str


@dataclass(frozen=True)
class ResourceInfo:
    """The resource a NOT_FOUND concerns."""

    resource_type: str
    resource_name: str
    owner: str
    description: str


@dataclass(frozen=True)
class ErrorInfo:
    """A machine-readable reason (e.g. VERSION_CONFLICT) with its domain and metadata."""

    reason: str
    domain: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class StatusDetails:
    """The google.rpc details of a failed call that this client understands."""

    field_violations: tuple[FieldViolation, ...] = ()
    precondition_violations: tuple[PreconditionViolation, ...] = ()
    resource_info: ResourceInfo | None = None
    error_infos: tuple[ErrorInfo, ...] = ()
    retry_delay: timedelta | None = None
    other_type_urls: tuple[str, ...] = field(default=())

    @property
    def error_info(self) -> ErrorInfo | None:
        """The first ErrorInfo (most errors carry one), None without any."""
        return self.error_infos[0] if self.error_infos else None


def _decode(name: str, value: bytes) -> Any:
    message = _CLASSES[name]()
    message.ParseFromString(value)
    return message


def parse_details(trailing_metadata: Iterable[object] | None) -> StatusDetails:
    """The details packed in a call's trailing metadata; empty when there are none.

    Accepts the metadata of a sync call (`_Metadatum` pairs) and of a grpc.aio call.
    """
    for item in trailing_metadata or ():
        key, value = item if isinstance(item, tuple) else (getattr(item, "key", ""), None)
        if key == DETAILS_KEY and isinstance(value, bytes):
            try:
                return _details(_decode("Status", value).details)
            except DecodeError:
                return StatusDetails()
    return StatusDetails()


def _details(packed: Iterable[Any]) -> StatusDetails:
    found: dict[str, Any] = {}
    infos: list[ErrorInfo] = []
    violations: list[FieldViolation] = []
    preconditions: list[PreconditionViolation] = []
    other: list[str] = []
    for container in packed:
        name = container.type_url.removeprefix(_TYPE_PREFIX).removeprefix("google.rpc.")
        if name not in _CLASSES or name == "Status":
            other.append(container.type_url)
            continue
        detail = _decode(name, container.value)
        if name == "BadRequest":
            violations.extend(
                FieldViolation(v.field, v.description) for v in detail.field_violations
            )
        elif name == "ErrorInfo":
            infos.append(ErrorInfo(detail.reason, detail.domain, dict(detail.metadata)))
        elif name == "PreconditionFailure":
            preconditions.extend(
                PreconditionViolation(v.type, v.subject, v.description) for v in detail.violations
            )
        else:
            found[name] = detail
    resource, retry = found.get("ResourceInfo"), found.get("RetryInfo")
    return StatusDetails(
        field_violations=tuple(violations),
        precondition_violations=tuple(preconditions),
        resource_info=(
            ResourceInfo(
                resource.resource_type, resource.resource_name, resource.owner, resource.description
            )
            if resource is not None
            else None
        ),
        error_infos=tuple(infos),
        retry_delay=retry.retry_delay.ToTimedelta() if retry is not None else None,
        other_type_urls=tuple(other),
    )
