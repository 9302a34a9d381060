"""The audit trail: AuditEntry messages as dataclasses."""

from __future__ import annotations

from incident_registry_client._convert.values import time_field, uuid
from incident_registry_client.proto.incidents.v1 import audit_service_pb2
from incident_registry_client.types.audit import AuditEntry
from incident_registry_client.types.common import Page


def audit_entry(m: audit_service_pb2.AuditEntry) -> AuditEntry:
    """An entry of the audit trail."""
    return AuditEntry(
        position=m.position,
        recorded_at=time_field(m, "recorded_at"),
        actor=m.actor,
        event_type=m.event_type,
        stream_id=uuid(m.stream_id),
        stream_type=m.stream_type,
        stream_version=m.stream_version,
        request_id=m.request_id,
        correlation_id=m.correlation_id,
    )


def audit_page(m: audit_service_pb2.ListAuditEntriesResponse) -> Page[AuditEntry]:
    """A page of the audit trail, newest first."""
    return Page(tuple(audit_entry(e) for e in m.entries), m.next_page_token, m.position)
