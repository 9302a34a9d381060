"""Server streams that reconnect where they left off: `Stream` (sync) and `AsyncStream`.

Both run a `StreamCall`: its state says which request (re)opens the stream and which items a
message stands for. When the connection drops (UNAVAILABLE, e.g. a server restart) or the
server ends a stalled reader (RESOURCE_EXHAUSTED), the stream reopens after the last position
received, waiting between attempts as the client's RetryPolicy says, at most `max_attempts`
consecutive failures in a row; any message received resets the count. Other errors end the
iteration by raising the matching RegistryError. A stream's timeout bounds it as a whole,
reconnects included.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import grpc
from google.protobuf.message import Message

from incident_registry_client._call import StreamCall
from incident_registry_client.errors import DeadlineExceededError, handle_rpc_error
from incident_registry_client.retry import RetryPolicy

__all__ = ["AsyncStream", "Stream"]

T = TypeVar("T")


class _SyncCall(Protocol):
    def __next__(self) -> Any: ...

    def cancel(self) -> bool: ...


class _AsyncCall(Protocol):
    async def read(self) -> Any: ...

    def cancel(self) -> bool: ...


class _Resumption(Generic[T]):
    """What both streams share: the pending items, the failure count and the state."""

    def __init__(self, call: StreamCall[T], retry: RetryPolicy) -> None:
        self._spec = call
        self._retry = retry
        self._pending: deque[tuple[T, int | None]] = deque()
        self._position: int | None = None
        self._deadline: float | None = None
        self._failures = 0
        self._closed = False
        self.reconnects = 0
        """How many times the stream was reopened after a failure."""

    @property
    def position(self) -> int | None:
        """The log position to resume after, given the items yielded so far (None before).

        Store it with what the items were used for: a new stream started after it continues
        exactly where this one stopped.
        """
        return self._position

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (by `close`, its end, or an error)."""
        return self._closed

    def _request(self) -> Message:
        return self._spec.state.request()

    def _remaining(self) -> float | None:
        """Seconds left of the stream's timeout, which spans every reconnect (None: none)."""
        if self._spec.timeout is None:
            return None
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self._spec.timeout
        remaining = self._deadline - now
        if remaining <= 0:
            self._closed = True
            msg = f"the stream's timeout of {self._spec.timeout:g} s passed"
            raise DeadlineExceededError(msg)
        return remaining

    def _accept(self, message: Any) -> None:
        self._failures = 0
        self._pending.extend(self._spec.state.accept(message))

    def _pop(self) -> T:
        item, position = self._pending.popleft()
        if position is not None:
            self._position = position
        return item

    def _backoff(self, err: grpc.RpcError) -> float:
        """Seconds to wait before reopening after `err`; raises when the stream must end."""
        error = handle_rpc_error(err)
        self._failures += 1
        delay = self._retry.stream_delay(error, self._failures)
        if delay is None:
            self._closed = True
            raise error from err
        self.reconnects += 1
        return delay


class Stream(_Resumption[T]):
    """An iterator over a server stream that reconnects after the last position received.

    Close it (or use it in a `with` block) to end the call; `close()` may be called from
    another thread to stop a blocked iteration.
    """

    def __init__(
        self,
        call: StreamCall[T],
        open_call: Callable[[Message, float | None], _SyncCall],
        retry: RetryPolicy,
    ) -> None:
        super().__init__(call, retry)
        self._open = open_call
        self._call: _SyncCall | None = None

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        while not self._pending:
            if self._closed:
                raise StopIteration
            self._receive()
        return self._pop()

    def _receive(self) -> None:
        if self._call is None:
            self._call = self._open(self._request(), self._remaining())
        try:
            message = next(self._call)
        except StopIteration:
            self._closed = True
            return
        except grpc.RpcError as err:
            self._call = None
            if self._closed:
                return  # cancelled by close()
            time.sleep(self._backoff(err))
            return
        self._accept(message)

    def close(self) -> None:
        """Cancel the call; the iteration ends."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStream(_Resumption[T]):
    """An async iterator over a server stream that reconnects after the last position received.

    Close it with `await stream.aclose()` (or use it in an `async with` block) to end the call.
    """

    def __init__(
        self,
        call: StreamCall[T],
        open_call: Callable[[Message, float | None], _AsyncCall],
        retry: RetryPolicy,
    ) -> None:
        super().__init__(call, retry)
        self._open = open_call
        self._call: _AsyncCall | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            await self._receive()
        return self._pop()

    async def _receive(self) -> None:
        if self._call is None:
            self._call = self._open(self._request(), self._remaining())
        try:
            message = await self._call.read()
        except grpc.RpcError as err:
            self._call = None
            if self._closed:
                return
            await asyncio.sleep(self._backoff(err))
            return
        except asyncio.CancelledError:
            if self._closed:  # the call was cancelled by aclose()
                return
            raise
        if message is grpc.aio.EOF:
            self._closed = True
            self._call = None
            return
        self._accept(message)

    async def aclose(self) -> None:
        """Cancel the call; the iteration ends."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
