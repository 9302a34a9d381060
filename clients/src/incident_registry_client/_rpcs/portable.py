"""EventLogService's export and import: copying the log between registries."""

from __future__ import annotations

from collections.abc import Sequence

from incident_registry_client._call import Call, StreamCall, method_path, write_call
from incident_registry_client._convert.values import id_text, optional_timestamp, time_field, uuid
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.types.portable import (
    ExportedEvent,
    ExportFinished,
    ExportItem,
    ImportResult,
)


def _exported(message: pb.ExportedEvent) -> ExportedEvent:
    return ExportedEvent(
        position=message.position,
        stream_id=uuid(message.stream_id),
        stream_type=message.stream_type,
        stream_version=message.stream_version,
        event_type=message.event_type,
        recorded_at=time_field(message, "recorded_at"),
        tags=tuple(message.tags),
        state_json=message.state_json,
    )


def _exported_message(event: ExportedEvent) -> pb.ExportedEvent:
    return pb.ExportedEvent(
        position=event.position,
        stream_id=id_text(event.stream_id),
        stream_type=event.stream_type,
        stream_version=event.stream_version,
        event_type=event.event_type,
        recorded_at=optional_timestamp(event.recorded_at),
        tags=list(event.tags),
        state_json=event.state_json,
    )


class ExportState:
    """Where an export resumes: after the last event received, towards the same end.

    With `to_position` 0 (the head when the export starts), a resumed export ends at the head
    when it resumed. ExportFinished counts the events yielded by every attempt.
    """

    def __init__(self, request: pb.ExportEventsRequest) -> None:
        self._request = request
        self.position: int | None = None
        self._exported = 0

    def request(self) -> pb.ExportEventsRequest:
        """The first request, or one that starts after the last event received."""
        if self.position is None:
            return self._request
        resumed = pb.ExportEventsRequest()
        resumed.CopyFrom(self._request)
        resumed.after_position = self.position
        return resumed

    def accept(self, message: pb.ExportEventsResponse) -> Sequence[tuple[ExportItem, int | None]]:
        """The events of a message not accepted before, or the end of the export."""
        if message.WhichOneof("message") == "finished":
            end = message.finished.position
            return [(ExportFinished(end, self._exported), end)]
        fresh: list[tuple[ExportItem, int | None]] = []
        for event in message.events.events:
            if self.position is not None and event.position <= self.position:
                continue
            self.position = event.position
            fresh.append((_exported(event), event.position))
        self._exported += len(fresh)
        return fresh


def export_events(
    *,
    after_position: int = 0,
    to_position: int = 0,
    max_batch_size: int = 0,
    timeout: float | None = None,
) -> StreamCall[ExportItem]:
    """Export the log after `after_position` up to `to_position` (0: the head), then finish.

    Yields each ExportedEvent in log order, then one ExportFinished. After a dropped
    connection it resumes after the last event received. `timeout` bounds the whole export.
    """
    request = pb.ExportEventsRequest(
        after_position=after_position, to_position=to_position, max_batch_size=max_batch_size
    )
    return StreamCall(
        method_path(pb, "EventLogService", "ExportEvents"),
        pb.ExportEventsResponse.FromString,
        ExportState(request),
        timeout,
    )


def import_events(
    *, events: Sequence[ExportedEvent], timeout: float | None = None
) -> Call[ImportResult]:
    """Append exported events (1 to 2000, in log order) in one transaction.

    Events already in the log with the same state are skipped, so retrying an import is
    safe; events that differ from those at their stream versions raise ImportConflictError.
    """
    request = pb.ImportEventsRequest(events=[_exported_message(e) for e in events])
    return write_call(
        method_path(pb, "EventLogService", "ImportEvents"),
        request,
        pb.ImportEventsResponse,
        lambda r: ImportResult(r.imported, r.skipped, r.first_position, r.last_position),
        timeout,
    )
