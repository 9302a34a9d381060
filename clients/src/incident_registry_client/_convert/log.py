"""The event log: filters, windows, pages, the head and subscription messages."""

from __future__ import annotations

from incident_registry_client._convert.events import events
from incident_registry_client._convert.values import time_field
from incident_registry_client.proto.incidents.v1 import event_log_service_pb2 as pb
from incident_registry_client.types.log import (
    CaughtUp,
    Checkpoint,
    EventFilter,
    FellBehind,
    LogHead,
    LogPage,
    StreamWindow,
    SubscriptionItem,
)


def filter_message(value: EventFilter | None) -> pb.EventFilter | None:
    """A filter for a request, None to select every event."""
    if value is None:
        return None
    return pb.EventFilter(
        event_types=list(value.event_types),
        stream_types=list(value.stream_types),
        tags=list(value.tags),
    )


def stream_window(message: pb.ReadStreamResponse) -> StreamWindow:
    """A ReadStream response as a dataclass."""
    return StreamWindow(
        events=events(message.events),
        next_version=message.next_version,
        stream_version=message.stream_version,
    )


def log_page(message: pb.ReadAllResponse) -> LogPage:
    """A ReadAll response as a dataclass."""
    return LogPage(
        events=events(message.events),
        next_position=message.next_position,
        head_position=message.head_position,
    )


def log_head(message: pb.GetHeadResponse) -> LogHead:
    """A GetHead response as a dataclass."""
    return LogHead(position=message.position, recorded_at=time_field(message, "recorded_at"))


def subscription_items(message: pb.SubscribeResponse) -> list[SubscriptionItem]:
    """A Subscribe message as the items it stands for: events one by one, or one marker."""
    kind = message.WhichOneof("message")
    if kind == "events":
        return list(events(message.events.events))
    if kind == "caught_up":
        return [CaughtUp(message.caught_up.position)]
    if kind == "fell_behind":
        return [FellBehind(message.fell_behind.position, message.fell_behind.head_position)]
    if kind == "checkpoint":
        return [Checkpoint(message.checkpoint.position)]
    return []  # a message kind newer than this client: nothing to resume after
