"""EventLogService."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import grpc
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2_grpc as pb_grpc

from service.api.envelopes import envelope
from service.api.fields import FieldReader
from service.api.timestamps import stamp
from service.app.batches import listed
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
from service.app.exporting import ExportFinished, LogExport, PortableEvent
from service.app.importing import MAX_IMPORT_BATCH, EventImport
from service.app.results import RecordedEvent
from service.domain.errors import FieldViolation, InvalidArgumentError, SubscriberTooSlowError

Context = grpc.aio.ServicerContext[Any, Any]

MESSAGE_BUDGET = 2 * 1024 * 1024
"""Events per response are cut to stay well inside the 4 MiB message limit."""
ENVELOPE_OVERHEAD = 8

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_FORMATS = {
    pb.PAYLOAD_FORMAT_UNSPECIFIED: (True, True),
    pb.PAYLOAD_FORMAT_BOTH: (True, True),
    pb.PAYLOAD_FORMAT_TYPED: (True, False),
    pb.PAYLOAD_FORMAT_JSON: (False, True),
}


class EventLogServicer(pb_grpc.EventLogServiceServicer):
    """Serves EventLogService from the EventLog application service."""

    def __init__(
        self,
        log: EventLog,
        *,
        stall_seconds: float = 30.0,
        exports: LogExport,
        imports: EventImport,
    ) -> None:
        self._log = log
        self._stall_seconds = stall_seconds
        self._exports = exports
        self._imports = imports

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
        backwards = request.direction == pb.READ_DIRECTION_BACKWARDS
        window = await self._log.read_stream(stream_id, request.from_version, backwards, limit)
        envelopes = _fitting(_envelopes(window.events, formats))
        next_version = window.next_version
        if len(envelopes) < len(window.events):
            last = envelopes[-1].stream_version
            next_version = last - 1 if backwards else last + 1
        return pb.ReadStreamResponse(
            events=envelopes, next_version=next_version, stream_version=window.stream_version
        )

    async def ReadAll(  # noqa: N802
        self, request: pb.ReadAllRequest, context: Context
    ) -> pb.ReadAllResponse:
        """Read a page of the global log."""
        reader = FieldReader()
        reader.count(request.from_position, "from_position")
        limit = limit_of(request.limit, reader)
        formats = _formats(request.payload_format, reader)
        log_filter = self._filter(request.filter, reader)
        reader.raise_if_any()
        backwards = request.direction == pb.READ_DIRECTION_BACKWARDS
        window = await self._log.read_all(request.from_position, backwards, limit, log_filter)
        envelopes = _fitting(_envelopes(window.events, formats))
        next_position = window.next_position
        if len(envelopes) < len(window.events):
            # The page was cut to fit one message: continue right after what was sent.
            next_position = envelopes[-1].position
        return pb.ReadAllResponse(
            events=envelopes, next_position=next_position, head_position=window.head
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
        log_filter = self._filter(request.filter, reader)
        reader.raise_if_any()
        async for item in self._log.follow(after, log_filter, batch_size):
            for message in _follow_messages(item, formats):
                await self._write(context, message)

    async def ExportEvents(  # type: ignore[override]  # noqa: N802
        self, request: pb.ExportEventsRequest, context: Context
    ) -> None:
        """Stream a range of the log as exported events, then where the export ended.

        Written like Subscribe: one message at a time, ending the stream with
        RESOURCE_EXHAUSTED when the client reads nothing for `stall_seconds` (resume after
        the last position received).
        """
        export = self._exports.export(
            request.after_position, request.to_position, request.max_batch_size
        )
        async for item in export:
            if isinstance(item, ExportFinished):
                finished = pb.ExportFinished(position=item.position, exported=item.exported)
                await self._write(context, pb.ExportEventsResponse(finished=finished))
                continue
            remaining = [_exported(event) for event in item]
            while remaining:
                batch = _fitting(remaining)
                message = pb.ExportEventsResponse(events=pb.ExportedEventBatch(events=batch))
                await self._write(context, message)
                remaining = remaining[len(batch) :]

    async def ImportEvents(  # noqa: N802
        self, request: pb.ImportEventsRequest, context: Context
    ) -> pb.ImportEventsResponse:
        """Append exported events in one transaction, skipping those already in the log."""
        if len(request.events) > MAX_IMPORT_BATCH:
            msg = f"must hold 1 to {MAX_IMPORT_BATCH} events, not {len(request.events)}"
            raise InvalidArgumentError([FieldViolation("events", msg)])
        reader = FieldReader()
        events = [_portable(message, index, reader) for index, message in enumerate(request.events)]
        try:
            reader.raise_if_any()
        except InvalidArgumentError as err:
            raise InvalidArgumentError(listed(err.violations, "events")) from None
        result = await self._imports.import_events(events)
        return pb.ImportEventsResponse(
            imported=result.imported,
            skipped=result.skipped,
            first_position=result.first_position,
            last_position=result.last_position,
        )

    async def _write(self, context: Context, message: Any) -> None:
        """Write one message; end the stream if the subscriber reads nothing for too long."""
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
            # cancellation that a client's disconnect delivers here.
            async with asyncio.timeout(self._stall_seconds):
                await context.write(message)
        except TimeoutError:
            msg = (
                f"the subscriber read nothing for {self._stall_seconds:g} s; "
                "resubscribe after the last position received"
            )
            raise SubscriberTooSlowError(msg) from None

    def _filter(self, message: pb.EventFilter, reader: FieldReader) -> LogFilter:
        return self._log.compile_filter(
            list(message.event_types), list(message.stream_types), list(message.tags), reader
        )


def _exported(event: PortableEvent) -> pb.ExportedEvent:
    return pb.ExportedEvent(
        position=event.position,
        stream_id=str(event.stream_id),
        stream_type=event.stream_type,
        stream_version=event.stream_version,
        event_type=event.event_type,
        recorded_at=stamp(event.recorded_at),
        tags=event.tags,
        state_json=event.state.decode(),
    )


def _portable(message: pb.ExportedEvent, index: int, reader: FieldReader) -> PortableEvent:
    try:
        stream_id = UUID(message.stream_id)
    except ValueError:
        stream_id = reader.uuid(message.stream_id, f"events[{index}].stream_id")
    recorded_at = None
    if message.HasField("recorded_at"):
        # Timestamp.ToDatetime is several times slower, and an import converts thousands.
        stamp_ = message.recorded_at
        try:
            micros = stamp_.seconds * 1_000_000 + stamp_.nanos // 1000
            recorded_at = _EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            reader.check(False, f"events[{index}].recorded_at", "is not a valid timestamp")
    return PortableEvent(
        position=message.position,
        stream_id=stream_id,
        stream_type=message.stream_type,
        stream_version=message.stream_version,
        event_type=message.event_type,
        recorded_at=recorded_at,
        tags=tuple(message.tags),
        state=message.state_json.encode(),
    )


def _formats(value: int, reader: FieldReader) -> tuple[bool, bool]:
    known = _FORMATS.get(value)  # type: ignore[call-overload]
    reader.check(known is not None, "payload_format", "unknown PayloadFormat")
    return known or (True, True)


def _envelopes(events: list[RecordedEvent], formats: tuple[bool, bool]) -> list[Any]:
    typed, as_json = formats
    return [envelope(event, typed=typed, as_json=as_json) for event in events]


def _fitting(envelopes: list[Any]) -> list[Any]:
    """The leading envelopes that fit in one message (always at least one)."""
    total = 0
    for count, message in enumerate(envelopes):
        total += message.ByteSize() + ENVELOPE_OVERHEAD
        if total > MESSAGE_BUDGET and count:
            return envelopes[:count]
    return envelopes


def _follow_messages(item: FollowItem, formats: tuple[bool, bool]) -> list[pb.SubscribeResponse]:
    if isinstance(item, EventsReached):
        remaining = _envelopes(item.events, formats)
        batches: list[pb.SubscribeResponse] = []
        while remaining:
            batch = _fitting(remaining)
            batches.append(pb.SubscribeResponse(events=pb.EventBatch(events=batch)))
            remaining = remaining[len(batch) :]
        return batches
    if isinstance(item, CaughtUp):
        return [pb.SubscribeResponse(caught_up=pb.CaughtUp(position=item.position))]
    if isinstance(item, FellBehind):
        return [
            pb.SubscribeResponse(
                fell_behind=pb.FellBehind(position=item.position, head_position=item.head)
            )
        ]
    assert isinstance(item, Checkpoint)
    return [pb.SubscribeResponse(checkpoint=pb.Checkpoint(position=item.position))]
