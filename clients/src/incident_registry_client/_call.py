"""Transport-neutral descriptions of calls, built by `_rpcs` and run by either client.

A `Call` is one unary RPC, ready to send: the sync client runs it on a grpc.Channel, the
asyncio client on a grpc.aio.Channel, both with the same retry policy and error mapping.
`Pages` chains unary calls page by page; `StreamCall` opens a server stream that resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar
from uuid import uuid4

from google.protobuf.message import Message

T = TypeVar("T")
R = TypeVar("R", bound=Message)
P = TypeVar("P")
T_co = TypeVar("T_co", covariant=True)


def method_path(module: ModuleType, service: str, method: str) -> str:
    """The gRPC path of `service.method` from a generated module, checked against its descriptor."""
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    return f"/{descriptor.containing_service.full_name}/{descriptor.name}"


def new_request_id(request_id: str | None) -> str:
    """The caller's request id, or a fresh one: retries of the call reuse it."""
    return request_id if request_id is not None else str(uuid4())


@dataclass(frozen=True)
class Call(Generic[T]):
    """One unary RPC ready to send, and how to read its answer.

    `read` marks calls that change nothing, which may also be retried after a deadline.
    `timeout` is the deadline of each attempt in seconds (None: the client's default).
    """

    method: str
    request: Message
    decode: Callable[[bytes], Any]
    convert: Callable[[Any], T]
    read: bool
    timeout: float | None


def read_call(
    method: str,
    request: Message,
    response: type[R],
    convert: Callable[[R], T],
    timeout: float | None,
) -> Call[T]:
    """A call that changes nothing."""
    return Call(method, request, response.FromString, convert, read=True, timeout=timeout)


def write_call(
    method: str,
    request: Message,
    response: type[R],
    convert: Callable[[R], T],
    timeout: float | None,
) -> Call[T]:
    """A call that records something; its request carries a request id."""
    return Call(method, request, response.FromString, convert, read=False, timeout=timeout)


@dataclass(frozen=True)
class Pages(Generic[T]):
    """A listing read page by page: the first call, the call after a page, a page's items."""

    first: Call[Any]
    following: Callable[[Any], Call[Any] | None]
    items: Callable[[Any], Iterable[T]]


def pages(
    first: Call[P],
    following: Callable[[P], Call[P] | None],
    items: Callable[[P], Iterable[T]],
) -> Pages[T]:
    """Pages starting with `first`; `following(page)` is None after the last page."""
    return Pages(first, following, items)


class StreamState(Protocol[T_co]):
    """What a resuming stream remembers: where to reopen it, and what it already yielded."""

    def request(self) -> Message:
        """The request that (re)opens the stream after everything accepted so far."""
        ...

    def accept(self, message: Any) -> Sequence[tuple[T_co, int | None]]:
        """The items a received message stands for (none accepted before), each with the log
        position a consumer may resume after once it has it (None: no resume point)."""
        ...


@dataclass(frozen=True)
class StreamCall(Generic[T]):
    """A server-streaming RPC that reopens from `state` after a dropped connection.

    `timeout` bounds the whole stream (None: no deadline; streams are long-lived).
    """

    method: str
    decode: Callable[[bytes], Any]
    state: StreamState[T]
    timeout: float | None
