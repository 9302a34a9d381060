"""AuditService: who recorded each event of the log, when and in which request (the audit model)."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from incident_registry_client.proto.incidents.v1 import audit_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import audit_service_pb2_grpc as pb_grpc

from projections.audit import NAME, AuditRow
from projections.audit_model import AuditSelection, query_audit
from projections.runtime import Projections
from service.api.catch_up import wait_until_caught_up
from service.api.fields import FieldReader
from service.api.page_tokens import encode_page_token, read_page_request
from service.api.timestamps import stamp
from service.app.registry import Registry
from service.domain.events import EVENT_TYPES
from service.store.base import EventStoreBackend

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_ACTOR = 256
"""The longest actor a filter may name."""


class AuditServicer(pb_grpc.AuditServiceServicer):
    """Serves AuditService from the audit projection."""

    def __init__(self, projections: Projections, backend: EventStoreBackend) -> None:
        self._projections = projections
        self._backend = backend

    async def ListAuditEntries(  # noqa: N802 - gRPC method name
        self, request: pb.ListAuditEntriesRequest, context: Context
    ) -> pb.ListAuditEntriesResponse:
        """Return a page of entries, newest first, once the model includes `min_position`."""
        reader = FieldReader()
        selection = _selection(request, reader)
        bound = _fingerprint(request)
        after, limit = read_page_request(
            request.page_size,
            request.page_token,
            bound,
            reader,
            max_size=MAX_PAGE_SIZE,
            default_size=DEFAULT_PAGE_SIZE,
            other_selection="was issued for other filters; list again",
        )
        reader.count(request.min_position, "min_position")
        reader.raise_if_any()
        await wait_until_caught_up(
            self._projections, [NAME], request.min_position, self._backend, context
        )
        position, rows = await self._projections.read(
            lambda tx: (
                tx.position(NAME),
                query_audit(
                    tx,
                    selection,
                    before=after[0] if after is not None else None,
                    limit=limit + 1,
                ),
            )
        )
        page = rows[:limit]
        more = len(rows) > limit
        return pb.ListAuditEntriesResponse(
            entries=[audit_entry(row) for row in page],
            next_page_token=encode_page_token((page[-1].position, ""), bound) if more else "",
            position=position,
        )


def _selection(request: pb.ListAuditEntriesRequest, reader: FieldReader) -> AuditSelection:
    """The filters of a request; invalid ones are recorded in `reader`."""
    reader.check(
        len(request.actor) <= MAX_ACTOR, "actor", f"must be at most {MAX_ACTOR} characters"
    )
    for index, name in enumerate(request.event_types):
        reader.check(name in EVENT_TYPES, f"event_types[{index}]", f"unknown event type {name!r}")
    recorded_from = reader.time(request, "recorded_from", required=False)
    recorded_to = reader.time(request, "recorded_to", required=False)
    if recorded_from is not None and recorded_to is not None:
        reader.check(recorded_to > recorded_from, "recorded_to", "must be after recorded_from")
    return AuditSelection(
        actor=request.actor,
        event_types=tuple(request.event_types),
        stream_id=reader.optional_uuid(request.stream_id, "stream_id"),
        recorded_from=recorded_from,
        recorded_to=recorded_to,
    )


def audit_entry(row: AuditRow) -> pb.AuditEntry:
    """The API form of an entry of the audit model."""
    return pb.AuditEntry(
        position=row.position,
        recorded_at=stamp(row.recorded_at),
        actor=row.actor,
        event_type=row.event_type,
        stream_id=str(row.stream_id),
        stream_type=row.stream_type,
        stream_version=row.stream_version,
        request_id=row.request_id,
        correlation_id=row.correlation_id,
    )


def _fingerprint(request: pb.ListAuditEntriesRequest) -> str:
    """What a page token is bound to: the filters, without paging and min_position."""
    selection = pb.ListAuditEntriesRequest()
    selection.CopyFrom(request)
    selection.ClearField("page_size")
    selection.ClearField("page_token")
    selection.ClearField("min_position")
    return hashlib.sha256(selection.SerializeToString(deterministic=True)).hexdigest()[:16]


def audit_service(
    projections: Projections, registry: Registry
) -> tuple[AuditServicer, ServiceDescriptor]:
    """The servicer and the descriptor of AuditService, for add_read_model_services."""
    servicer = AuditServicer(projections, registry.backend)
    return servicer, pb.DESCRIPTOR.services_by_name["AuditService"]
