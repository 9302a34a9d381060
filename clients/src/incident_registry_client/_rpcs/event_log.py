"""EventLogService: reading the log, page by page, and following it live."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from incident_registry_client._call import (
    Call,
    Pages,
    StreamCall,
    method_path,
    pages,
    read_call,
)
from incident_registry_client._convert.enums import PAYLOAD_FORMAT, READ_DIRECTION
from incident_registry_client._convert.log import (
    filter_message,
    log_head,
    log_page,
    stream_window,
    subscription_items,
)
from incident_registry_client._convert.values import id_text
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.types.events import RecordedEvent
from incident_registry_client.types.log import (
    CaughtUp,
    Checkpoint,
    EventFilter,
    LogHead,
    LogPage,
    PayloadFormat,
    ReadDirection,
    StreamWindow,
    SubscriptionItem,
)


def _path(method: str) -> str:
    return method_path(pb, "EventLogService", method)


def read_stream(
    *,
    stream_id: UUID,
    from_version: int = 0,
    direction: ReadDirection = ReadDirection.FORWARDS,
    limit: int = 0,
    payload_format: PayloadFormat = PayloadFormat.BOTH,
    timeout: float | None = None,
) -> Call[StreamWindow]:
    """Return a window of one aggregate's events (`limit` 1-1000, 0 for 100) from a version.

    `from_version` 0 starts at the first version forwards, at the last one backwards.
    """
    request = pb.ReadStreamRequest(
        stream_id=id_text(stream_id),
        from_version=from_version,
        direction=READ_DIRECTION.to_proto(direction),
        limit=limit,
        payload_format=PAYLOAD_FORMAT.to_proto(payload_format),
    )
    return read_call(_path("ReadStream"), request, pb.ReadStreamResponse, stream_window, timeout)


def read_all(
    *,
    from_position: int = 0,
    direction: ReadDirection = ReadDirection.FORWARDS,
    limit: int = 0,
    filter: EventFilter | None = None,
    payload_format: PayloadFormat = PayloadFormat.BOTH,
    timeout: float | None = None,
) -> Call[LogPage]:
    """Return a page of the global log after `from_position` (exclusive), or before it backwards.

    `limit` is 1-1000 (0 for 100); the page's `next_position` continues (0 at the end).
    """
    request = pb.ReadAllRequest(
        from_position=from_position,
        direction=READ_DIRECTION.to_proto(direction),
        limit=limit,
        filter=filter_message(filter),
        payload_format=PAYLOAD_FORMAT.to_proto(payload_format),
    )
    return read_call(_path("ReadAll"), request, pb.ReadAllResponse, log_page, timeout)


def get_head(*, timeout: float | None = None) -> Call[LogHead]:
    """Return the last position of the log and when it was recorded."""
    return read_call(_path("GetHead"), pb.GetHeadRequest(), pb.GetHeadResponse, log_head, timeout)


def iter_stream(
    *,
    stream_id: UUID,
    from_version: int = 0,
    direction: ReadDirection = ReadDirection.FORWARDS,
    page_size: int = 0,
    payload_format: PayloadFormat = PayloadFormat.BOTH,
    timeout: float | None = None,
) -> Pages[RecordedEvent]:
    """Iterate over one aggregate's events, reading `page_size` (0 for 100) at a time.

    Each page is one ReadStream call, retried on its own; the iteration continues from the
    page after the last one read.
    """

    def following(window: StreamWindow) -> Call[StreamWindow] | None:
        if not window.next_version:
            return None
        return read_stream(
            stream_id=stream_id,
            from_version=window.next_version,
            direction=direction,
            limit=page_size,
            payload_format=payload_format,
            timeout=timeout,
        )

    first = read_stream(
        stream_id=stream_id,
        from_version=from_version,
        direction=direction,
        limit=page_size,
        payload_format=payload_format,
        timeout=timeout,
    )
    return pages(first, following, lambda window: window.events)


def iter_all(
    *,
    from_position: int = 0,
    direction: ReadDirection = ReadDirection.FORWARDS,
    page_size: int = 0,
    filter: EventFilter | None = None,
    payload_format: PayloadFormat = PayloadFormat.BOTH,
    timeout: float | None = None,
) -> Pages[RecordedEvent]:
    """Iterate over the global log up to its current end, reading `page_size` events at a time.

    Each page is one ReadAll call, retried on its own; the iteration continues after the last
    position read, so a reconnect neither repeats nor skips events.
    """

    def following(page: LogPage) -> Call[LogPage] | None:
        if not page.next_position:
            return None
        return read_all(
            from_position=page.next_position,
            direction=direction,
            limit=page_size,
            filter=filter,
            payload_format=payload_format,
            timeout=timeout,
        )

    first = read_all(
        from_position=from_position,
        direction=direction,
        limit=page_size,
        filter=filter,
        payload_format=payload_format,
        timeout=timeout,
    )
    return pages(first, following, lambda page: page.events)


class SubscriptionState:
    """Where a subscription resumes: after the last position it was told about.

    Every event, checkpoint and caught-up marker moves that position; after a reconnect the
    subscription asks for what follows it, and drops anything at or before it.
    """

    def __init__(self, request: pb.SubscribeRequest) -> None:
        self._request = request
        self.position: int | None = None

    def request(self) -> pb.SubscribeRequest:
        """The first request, or one that starts after the last position received."""
        if self.position is None:
            return self._request
        resumed = pb.SubscribeRequest()
        resumed.CopyFrom(self._request)
        resumed.after_position = self.position
        return resumed

    def accept(
        self, message: pb.SubscribeResponse
    ) -> Sequence[tuple[SubscriptionItem, int | None]]:
        """The items of a message not accepted before; moves the resume position."""
        fresh: list[tuple[SubscriptionItem, int | None]] = []
        for item in subscription_items(message):
            if isinstance(item, RecordedEvent):
                if self.position is not None and item.position <= self.position:
                    continue
                self.position = item.position
            elif isinstance(item, CaughtUp | Checkpoint):
                self.position = max(self.position or 0, item.position)
            else:  # FellBehind says how far behind the reader is: no resume point
                fresh.append((item, None))
                continue
            fresh.append((item, self.position))
        return fresh


def subscribe(
    *,
    after_position: int | None = None,
    from_end: bool = False,
    filter: EventFilter | None = None,
    max_batch_size: int = 0,
    payload_format: PayloadFormat = PayloadFormat.BOTH,
    timeout: float | None = None,
) -> StreamCall[SubscriptionItem]:
    """Follow the log: matching events one by one, then live, with progress markers.

    Starts at the first event, after `after_position` (exclusive), or with `from_end=True` at
    the head. Yields each RecordedEvent, CaughtUp when the head is reached, Checkpoint for
    positions whose events the filter skipped, and FellBehind when the log outruns the reader.
    After a dropped connection it resubscribes after the last position received: no event is
    repeated or skipped. `timeout` bounds the whole subscription (None: no deadline).
    """
    if after_position is not None and from_end:
        msg = "give either after_position or from_end=True, not both"
        raise ValueError(msg)
    request = pb.SubscribeRequest(
        filter=filter_message(filter),
        max_batch_size=max_batch_size,
        payload_format=PAYLOAD_FORMAT.to_proto(payload_format),
    )
    if after_position is not None:
        request.after_position = after_position
    elif from_end:
        request.from_end = True
    else:
        request.from_start = True
    return StreamCall(
        _path("Subscribe"), pb.SubscribeResponse.FromString, SubscriptionState(request), timeout
    )
