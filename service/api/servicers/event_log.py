"""EventLogService."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2_grpc as pb_grpc

from service.api.envelopes import envelope
from service.api.fields import FieldReader
from service.api.timestamps import stamp
from service.app.event_log import (
    CaughtUp,
    Checkpoint,
    EventLog,
    EventsReached,
    FellBehind,
    FollowItem,
    LogFilter,
    limit_of,
)
from service.app.results import RecordedEvent
from service.domain.errors import SubscriberTooSlowError

Context = grpc.aio.ServicerContext[Any, Any]

_FORMATS = {
    pb.PAYLOAD_FORMAT_UNSPECIFIED: (True, True),
    pb.PAYLOAD_FORMAT_BOTH: (True, True),
    pb.PAYLOAD_FORMAT_TYPED: (True, False),
    pb.PAYLOAD_FORMAT_JSON: (False, True),
}


class EventLogServicer(pb_grpc.EventLogServiceServicer):
    """Serves EventLogService from the EventLog application service."""

    def __init__(self, log: EventLog, *, stall_seconds: float = 30.0) -> None:
        self._log = log
        self._stall_seconds = stall_seconds

    async def ReadStream(  # noqa: N802 - gRPC method name
        self, request: pb.ReadStreamRequest, context: Context
    ) -> pb.ReadStreamResponse:
        """Read a window of one stream."""
        reader = FieldReader()
        stream_id = reader.uuid(request.stream_id, "stream_id")
        reader.count(request.from_version, "from_version")
        limit = limit_of(request.limit, reader)
        formats = _formats(request.payload_format, reader)
        reader.raise_if_any()
        window = await self._log.read_stream(
            stream_id,
            request.from_version,
            request.direction == pb.READ_DIRECTION_BACKWARDS,
            limit,
        )
        return pb.ReadStreamResponse(
            events=_envelopes(window.events, formats),
            next_version=window.next_version,
            stream_version=window.stream_version,
        )

    async def ReadAll(  # noqa: N802
        self, request: pb.ReadAllRequest, context: Context
    ) -> pb.ReadAllResponse:
        """Read a page of the global log."""
        reader = FieldReader()
        reader.count(request.from_position, "from_position")
        limit = limit_of(request.limit, reader)
        formats = _formats(request.payload_format, reader)
        reader.raise_if_any()
        window = await self._log.read_all(
            request.from_position,
            request.direction == pb.READ_DIRECTION_BACKWARDS,
            limit,
            self._filter(request.filter),
        )
        return pb.ReadAllResponse(
            events=_envelopes(window.events, formats),
            next_position=window.next_position,
            head_position=window.head,
        )

    async def GetHead(  # noqa: N802
        self, request: pb.GetHeadRequest, context: Context
    ) -> pb.GetHeadResponse:
        """Return the head of the log."""
        position, recorded_at = await self._log.head()
        return pb.GetHeadResponse(position=position, recorded_at=stamp(recorded_at))

    async def Subscribe(  # type: ignore[override]  # noqa: N802
        self, request: pb.SubscribeRequest, context: Context
    ) -> None:
        """Stream the log from the requested start, then live.

        Messages are written one at a time with a deadline, rather than yielded: a subscriber
        that stops reading stalls the write, and after `stall_seconds` its stream ends with
        RESOURCE_EXHAUSTED instead of the server buffering for it.
        """
        reader = FieldReader()
        start = request.WhichOneof("start")
        after: int | None = 0
        if start == "after_position":
            reader.count(request.after_position, "after_position")
            after = request.after_position
        elif start == "from_end":
            after = None
        batch_size = limit_of(request.max_batch_size, reader, "max_batch_size")
        formats = _formats(request.payload_format, reader)
        reader.raise_if_any()
        log_filter = self._filter(request.filter)
        async for item in self._log.follow(after, log_filter, batch_size):
            try:
                await asyncio.wait_for(
                    context.write(_follow_message(item, formats)), self._stall_seconds
                )
            except TimeoutError:
                msg = (
                    f"the subscriber read nothing for {self._stall_seconds:g} s; "
                    "resubscribe after the last position received"
                )
                raise SubscriberTooSlowError(msg) from None

    def _filter(self, message: pb.EventFilter) -> LogFilter:
        return self._log.compile_filter(
            list(message.event_types), list(message.stream_types), list(message.tags)
        )


def _formats(value: int, reader: FieldReader) -> tuple[bool, bool]:
    known = _FORMATS.get(value)  # type: ignore[call-overload]
    reader.check(known is not None, "payload_format", "unknown PayloadFormat")
    return known or (True, True)


def _envelopes(events: list[RecordedEvent], formats: tuple[bool, bool]) -> list[Any]:
    typed, as_json = formats
    return [envelope(event, typed=typed, as_json=as_json) for event in events]


def _follow_message(item: FollowItem, formats: tuple[bool, bool]) -> pb.SubscribeResponse:
    if isinstance(item, EventsReached):
        return pb.SubscribeResponse(events=pb.EventBatch(events=_envelopes(item.events, formats)))
    if isinstance(item, CaughtUp):
        return pb.SubscribeResponse(caught_up=pb.CaughtUp(position=item.position))
    if isinstance(item, FellBehind):
        return pb.SubscribeResponse(
            fell_behind=pb.FellBehind(position=item.position, head_position=item.head)
        )
    assert isinstance(item, Checkpoint)
    return pb.SubscribeResponse(checkpoint=pb.Checkpoint(position=item.position))
