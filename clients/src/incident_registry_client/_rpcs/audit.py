"""AuditService: who recorded each event of the log, when and in which request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from incident_registry_client._call import Call, Pages, method_path, pages, read_call
from incident_registry_client._convert.audit import audit_page
from incident_registry_client._convert.values import id_text, optional_timestamp
from incident_registry_client.proto.incidents.v1 import audit_service_pb2 as audit_pb
from incident_registry_client.types.audit import AuditEntry
from incident_registry_client.types.common import Page

T = TypeVar("T")


def list_audit_entries(
    *,
    actor: str = "",
    event_types: Sequence[str] = (),
    stream_id: UUID | None = None,
    recorded_from: datetime | None = None,
    recorded_to: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
    min_position: int = 0,
    timeout: float | None = None,
) -> Call[Page[AuditEntry]]:
    """Return a page of the audit trail — who recorded each event, when — newest first.

    Every filter given must match: exactly `actor`, any of `event_types` ("ShootingReported"),
    the events of the aggregate `stream_id`, recorded in `recorded_from` (inclusive) ..
    `recorded_to` (exclusive). `page_size` is 1 to 1000 (0 is 100); pass the page's
    `next_page_token` as `page_token`, with the same filters, for the next page.
    """
    request = audit_pb.ListAuditEntriesRequest(
        actor=actor,
        event_types=list(event_types),
        stream_id=id_text(stream_id) if stream_id is not None else "",
        recorded_from=optional_timestamp(recorded_from),
        recorded_to=optional_timestamp(recorded_to),
        page_size=page_size,
        page_token=page_token,
        min_position=min_position,
    )
    return read_call(
        method_path(audit_pb, "AuditService", "ListAuditEntries"),
        request,
        audit_pb.ListAuditEntriesResponse,
        audit_page,
        timeout,
    )


def iter_audit_entries(
    *,
    actor: str = "",
    event_types: Sequence[str] = (),
    stream_id: UUID | None = None,
    recorded_from: datetime | None = None,
    recorded_to: datetime | None = None,
    page_size: int = 0,
    min_position: int = 0,
    timeout: float | None = None,
) -> Pages[AuditEntry]:
    """Iterate over every audit entry matching the filters (as list_audit_entries), newest
    first, page by page; each page is one call, retried on its own."""

    def page(token: str) -> Call[Page[AuditEntry]]:
        return list_audit_entries(
            actor=actor,
            event_types=event_types,
            stream_id=stream_id,
            recorded_from=recorded_from,
            recorded_to=recorded_to,
            page_size=page_size,
            page_token=token,
            min_position=min_position,
            timeout=timeout,
        )

    return pages(page(""), lambda p: page(p.next_page_token) if p.next_page_token else None, _items)


def _items(page: Page[T]) -> tuple[T, ...]:
    return page.items
