"""A gRPC proxy in front of a registry server that fails calls the way a test plans.

Every call is recorded (method, request bytes, metadata) and forwarded as raw bytes, unless a
fault is queued for its method: `Abort` answers with a status (and trailing metadata) without
forwarding, `Stall` waits longer than the client's deadline without forwarding, and `Cut`
forwards a stream's first messages, then ends it with UNAVAILABLE as a dropped connection
would, and `Lose` forwards a call but drops its reply. The proxy can listen with TLS to test
the client's TLS options.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc


def _streaming_methods() -> frozenset[str]:
    """The server-streaming RPCs of incidents.v1, from the generated descriptors."""
    package = importlib.import_module("incident_registry_client.proto.incidents.v1")
    names: set[str] = set()
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_pb2"):
            generated = importlib.import_module(f"{package.__name__}.{module.name}")
            for service in generated.DESCRIPTOR.services_by_name.values():
                names.update(m.name for m in service.methods if m.server_streaming)
    return frozenset(names)


STREAMING = _streaming_methods()


@dataclass(frozen=True)
class Abort:
    """Answer with `code` (and trailing metadata) without forwarding."""

    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    details: str = "injected by the test proxy"
    trailing: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Stall:
    """Wait `seconds` (longer than the client's deadline) and answer UNAVAILABLE, unforwarded."""

    seconds: float


@dataclass(frozen=True)
class Lose:
    """Forward the call, then drop the reply and answer UNAVAILABLE (the write landed)."""


@dataclass(frozen=True)
class Cut:
    """Forward a stream's first `after` messages, then end it with UNAVAILABLE."""

    after: int


Fault = Abort | Stall | Lose | Cut


@dataclass
class Recorded:
    """One call the proxy received."""

    method: str
    request: bytes
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The RPC name, e.g. "ReportShooting"."""
        return self.method.rsplit("/", 1)[1]


Metadata = tuple[tuple[str, str | bytes], ...]


def _raw(data: bytes) -> bytes:
    """Requests and replies pass through the proxy as bytes."""
    return data


def _pairs(err: grpc.RpcError) -> Metadata:
    """The trailing metadata of a failed upstream call, to send on to the client."""
    return tuple((item.key, item.value) for item in err.trailing_metadata())


def _cancel(call: grpc.RpcContext) -> None:
    call.cancel()


def _remaining(context: grpc.ServicerContext) -> float | None:
    """The call's remaining time; None without a deadline (gRPC then says ~2**63 seconds)."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else remaining


class FaultProxy(grpc.GenericRpcHandler):
    """Forwards every call to `upstream`, failing the ones a test queued faults for."""

    def __init__(
        self, upstream: str, *, server_credentials: grpc.ServerCredentials | None = None
    ) -> None:
        self._upstream = grpc.insecure_channel(upstream)
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.calls: list[Recorded] = []
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers((self,))
        address = "127.0.0.1:0"
        if server_credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, server_credentials)
        self._server.start()

    @property
    def target(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    def fail(self, rpc: str, *faults: Fault) -> None:
        """Queue `faults` for the next calls of `rpc` (e.g. "ReportShooting"), one per call."""
        with self._lock:
            self._faults[rpc].extend(faults)

    def calls_of(self, rpc: str) -> list[Recorded]:
        """The recorded calls of `rpc`, in order."""
        with self._lock:
            return [call for call in self.calls if call.name == rpc]

    def stop(self) -> None:
        """Stop serving and close the upstream channel."""
        self._server.stop(grace=None)
        self._upstream.close()

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        if method.rsplit("/", 1)[1] in STREAMING:
            return grpc.unary_stream_rpc_method_handler(
                lambda request, context: self._stream(method, request, context)
            )
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self._unary(method, request, context)
        )

    def _record(self, method: str, request: bytes, context: grpc.ServicerContext) -> Fault | None:
        metadata = {
            key: value
            for key, value in context.invocation_metadata()
            if isinstance(value, str) and key != "user-agent"
        }
        with self._lock:
            self.calls.append(Recorded(method, request, metadata))
            queued = self._faults.get(method.rsplit("/", 1)[1])
            return queued.popleft() if queued else None

    def _forwarded_metadata(self, context: grpc.ServicerContext) -> Metadata:
        return tuple(
            (key, value)
            for key, value in context.invocation_metadata()
            if key != "user-agent" and not key.startswith(("grpc-", ":"))
        )

    def _inject(self, fault: Fault, context: grpc.ServicerContext) -> None:
        if isinstance(fault, Stall):
            time.sleep(fault.seconds)
            context.abort(grpc.StatusCode.UNAVAILABLE, "stalled by the test proxy")
        if isinstance(fault, Abort):
            if fault.trailing:
                context.set_trailing_metadata(fault.trailing)
            context.abort(fault.code, fault.details)

    def _unary(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        fault = self._record(method, request, context)
        if fault is not None and not isinstance(fault, Lose):
            self._inject(fault, context)
        try:
            reply = self._upstream.unary_unary(method, _raw, _raw)(
                request,
                timeout=_remaining(context),
                metadata=self._forwarded_metadata(context),
            )
        except grpc.RpcError as err:
            context.set_trailing_metadata(_pairs(err))
            context.abort(err.code(), err.details() or "")
        if isinstance(fault, Lose):
            context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost by the test proxy")
        return reply

    def _stream(self, method: str, request: bytes, context: grpc.ServicerContext) -> Any:
        fault = self._record(method, request, context)
        if fault is not None and not isinstance(fault, Cut):
            self._inject(fault, context)
        upstream = self._upstream.unary_stream(method, _raw, _raw)(
            request, timeout=_remaining(context), metadata=self._forwarded_metadata(context)
        )
        context.add_callback(lambda: _cancel(upstream))
        sent = 0
        try:
            for message in upstream:
                if isinstance(fault, Cut) and sent == fault.after:
                    upstream.cancel()
                    context.abort(grpc.StatusCode.UNAVAILABLE, "connection cut by the test proxy")
                yield message
                sent += 1
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED and not context.is_active():
                return
            context.set_trailing_metadata(_pairs(err))
            context.abort(err.code(), err.details() or "")
