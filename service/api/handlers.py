"""Cross-cutting work for every RPC: authentication and authorization, request context,
access log, error mapping, metrics.

Requests are parsed here rather than by grpc, so that undecodable bytes are answered with
INVALID_ARGUMENT instead of grpc's INTERNAL; domain errors become statuses through one table;
anything unexpected becomes INTERNAL, logged with its traceback, and never leaks its message.
When services are registered with a `CallGuard`, every call is authenticated and
checked against `service.security.roles.RPC_ROLES` before its request is even parsed, and the
authenticated identity replaces the client's x-actor header as the actor of its events.
With a `CallLimiter`, every call is then admitted by the caller's limits (calls in flight,
streams open, calls per second) before its request is parsed; with a call bound, a unary call
that runs longer is ended with DEADLINE_EXCEEDED (`service.security.limits`).
Every log line of a call carries its method, request id and effective correlation id, and a
trace id: its server span's when tracing is on (`service.tracing`), else the caller's W3C
traceparent's, if valid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
import structlog
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from opentelemetry.trace import Tracer

from service.api.errors import status_for
from service.api.requests import ACTOR_HEADER, correlation_header, set_call_trace_id
from service.api.servicers.common import headers
from service.domain.errors import RegistryError
from service.metrics_grpc import MethodMetrics, RpcMetrics
from service.security.auth import (
    AUTHORIZATION_HEADER,
    AccessDenied,
    CallGuard,
    call_identity,
    set_call_identity,
)
from service.security.limits import CallLimiter, CallTimedOutError, LimitExceededError, peer_host
from service.security.roles import allowed_roles
from service.tracing import TRACEPARENT_HEADER, CallSpan, ServerSpans, traceparent_trace_id

log = structlog.get_logger("service.api")

Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, Context], Awaitable[Any]]


@dataclass(frozen=True)
class CallPolicy:
    """What every call of the services registered with it goes through; all off by default.

    `metrics` count and time every call (see `_wrap`). `guard` authenticates every call and
    checks its roles against `service.security.roles.RPC_ROLES`. `limiter` admits every
    call by its caller's limits; `call_bound` is the longest a unary call may run, in seconds
    (server streams are not bounded). `tracer` starts a SERVER span for every call
    (`service.tracing.ServerSpans`).
    """

    metrics: RpcMetrics | None = None
    guard: CallGuard | None = None
    limiter: CallLimiter | None = None
    call_bound: float | None = None
    tracer: Tracer | None = None


def add_service(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    policy: CallPolicy = CallPolicy(),
) -> None:
    """Register every RPC of `service` on `server`, each wrapped by `_wrap` under `policy`.

    This does the work usually given to a server interceptor, at registration time: a
    grpc.aio interceptor runs per call and was measured to double the per-call CPU cost of
    a unary RPC, which the registry's throughput cannot afford.
    """
    metrics, guard, tracer = policy.metrics, policy.guard, policy.tracer
    call_bound = policy.call_bound
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        if method.client_streaming:
            msg = f"{method.full_name}: client streaming is not supported here"
            raise TypeError(msg)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        # A server-streaming servicer writes its messages with `context.write` and returns.
        make_handler = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        full_name = f"/{service.full_name}/{method.name}"
        behavior = getattr(servicer, method.name)
        if call_bound is not None and not method.server_streaming:
            behavior = _bounded(full_name, behavior, call_bound)
        handlers[method.name] = make_handler(
            _wrap(
                full_name,
                behavior,
                request_class.FromString,
                None if metrics is None else metrics.method(full_name),
                guard=guard,
                allowed=allowed_roles(full_name) if guard is not None else frozenset(),
                limiter=policy.limiter,
                stream=method.server_streaming,
                spans=None if tracer is None else ServerSpans(tracer, full_name),
            ),
            request_deserializer=None,
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)


def _wrap(  # noqa: PLR0915 - the per-call wrapper is kept in one frame (see below)
    method: str,
    behavior: Behavior,
    deserialize: Callable[[bytes], Any] | None,
    metrics: MethodMetrics | None = None,
    *,
    guard: CallGuard | None = None,
    allowed: frozenset[str] = frozenset(),
    limiter: CallLimiter | None = None,
    stream: bool = False,
    spans: ServerSpans | None = None,
) -> Behavior:
    """`behavior` with its request parsed, its errors mapped, and its end logged (and counted).

    The code logged and counted is the one the client receives: OK, the code of a domain
    error or of the servicer's own `context.abort`, INTERNAL for anything unexpected, and
    CANCELLED or DEADLINE_EXCEEDED when the call is cancelled under the handler (client gone,
    deadline passed, server stopping). A servicer ends a call with an error by raising or by
    aborting: a code set with `context.set_code` on a call that then returns is not seen.
    Without `metrics`, a call costs two `is None` tests more than it would without the
    option: nothing is counted, timed or looked up.

    With a `guard`, the caller must authenticate and hold one of the `allowed` roles
    (UNAUTHENTICATED, PERMISSION_DENIED otherwise); the call's headers then carry the
    authenticated identity as x-actor, whatever the client sent, and no longer the
    authorization header. Without one (authentication off), a call costs one `is None` test
    more, and x-actor is the client's, unauthenticated.

    With a `limiter`, the call is admitted (or refused with RESOURCE_EXHAUSTED, a RetryInfo
    detail and a message naming the limit) after authentication and before its request is
    parsed, as a server stream when `stream`; the caller is the authenticated identity's
    name, or the client's host when there is no guard. It is released when the call ends.
    Without one, a call costs two `is None` tests more.

    With `spans` (tracing on), each call has a SERVER span continuing the caller's W3C trace
    context (traceparent and tracestate headers) and ending with its status code (ERROR
    unless OK); the span's trace and span ids are bound to the call's log lines, and the
    trace id goes into the metadata of the events it records. Without them, a call costs one
    `is None` test and a traceparent header lookup more: the trace id of a valid traceparent
    header is bound to its log lines, and its events record none.

    The correlation id logged is the one its events record: the x-correlation-id header, or
    the request id when the header is absent.
    """

    # One flat frame per call: each option costs an `is None` test, not a function call.
    async def wrapper(raw: bytes, context: Context) -> Any:  # noqa: PLR0912, PLR0915
        started = time.perf_counter()
        meta = headers(context)
        if metrics is not None:
            metrics.begin()
        code = grpc.StatusCode.OK
        request_id = ""
        caller: str | None = None
        span: CallSpan | None = None
        correlation = correlation_header(meta)
        with structlog.contextvars.bound_contextvars(rpc=method, correlation_id=correlation):
            if spans is None:
                _bind_caller_trace(meta)
            else:
                span = _start_span(spans, meta)
            try:
                if guard is not None:
                    _authenticate(guard, method, allowed, meta, context)
                if limiter is not None:
                    caller = _acquire(limiter, context, stream=stream, metrics=metrics)
                try:
                    request = deserialize(raw) if deserialize else raw
                except (DecodeError, ValueError, RuntimeError) as err:
                    code = grpc.StatusCode.INVALID_ARGUMENT
                    await context.abort(code, f"request is not a valid protobuf message: {err}")
                request_id = getattr(request, "request_id", "")
                structlog.contextvars.bind_contextvars(
                    request_id=request_id, correlation_id=correlation or request_id
                )
                return await behavior(request, context)
            except AccessDenied as err:
                code = err.code
                structlog.contextvars.bind_contextvars(refused=err.message)
                await context.abort(code, err.message)
            except RegistryError as err:
                code, message, trailing = status_for(err)
                await context.abort(code, message, trailing_metadata=trailing)
            except grpc.aio.AbortError:
                # Set by the abort; the stubs say it is never None, but it is until it is set.
                code = cast("grpc.StatusCode | None", context.code()) or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = _cancelled_code(context)
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc_failed")
                await context.abort(code, "internal error; the failure was logged")
            finally:
                if caller is not None and limiter is not None:
                    limiter.release(caller, stream=stream)
                elapsed = time.perf_counter() - started
                log.info(
                    "rpc_completed",
                    code=code.name,
                    duration_ms=round(elapsed * 1000, 3),
                    actor=meta.get(ACTOR_HEADER, ""),
                )
                if metrics is not None:
                    metrics.end(code, elapsed)
                if span is not None:
                    span.end(code.value[0], code.name, request_id)

    return wrapper


def _bind_caller_trace(meta: dict[str, str]) -> None:
    """Bind the trace id of the caller's traceparent header, if valid, to the call's logs."""
    caller_trace = traceparent_trace_id(meta.get(TRACEPARENT_HEADER))
    if caller_trace:
        structlog.contextvars.bind_contextvars(trace_id=caller_trace)


def _start_span(spans: ServerSpans, meta: dict[str, str]) -> CallSpan:
    """Start the call's server span; bind its ids to the call's logs and its trace id to the
    metadata of the events the call records."""
    span = spans.start(meta)
    set_call_trace_id(span.trace_id)
    structlog.contextvars.bind_contextvars(trace_id=span.trace_id, span_id=span.span_id)
    return span


def _authenticate(
    guard: CallGuard,
    method: str,
    allowed: frozenset[str],
    meta: dict[str, str],
    context: Context,
) -> None:
    """Admit the caller of `method` by `guard` (AccessDenied if not), and make its identity
    the call's: in the call's context (`call_identity`) and as its x-actor header."""
    # The client's claim of who it is counts for nothing once callers
    # authenticate: refused calls are logged without an actor.
    meta.pop(ACTOR_HEADER, None)
    identity = guard.admit(method, allowed, meta, context)
    set_call_identity(identity)
    meta[ACTOR_HEADER] = identity.name
    meta.pop(AUTHORIZATION_HEADER, None)


def _acquire(
    limiter: CallLimiter,
    context: Context,
    *,
    stream: bool,
    metrics: MethodMetrics | None,
) -> str:
    """Admit a call by its caller's limits; the caller's key.

    The caller is the authenticated identity's name when authentication is on, else the
    client's host: without authentication, nothing else about a caller can be trusted (its
    x-actor header is its own claim). A refusal is logged in the access line, counted, and
    raised (LimitExceededError).
    """
    identity = call_identity()
    key = identity.name if identity is not None else peer_host(context.peer())
    try:
        limiter.acquire(key, stream=stream)
    except LimitExceededError as err:
        structlog.contextvars.bind_contextvars(refused=str(err))
        if metrics is not None:
            metrics.refused(err.limit)
        raise
    return key


def _bounded(method: str, behavior: Behavior, seconds: float) -> Behavior:
    """`behavior`, ended with CallTimedOutError (DEADLINE_EXCEEDED) after `seconds`."""

    async def bounded(request: Any, context: Context) -> Any:
        try:
            async with asyncio.timeout(seconds) as scope:
                return await behavior(request, context)
        except TimeoutError:
            if scope.expired():
                raise CallTimedOutError(method, seconds) from None
            raise

    return bounded


def _cancelled_code(context: Context) -> grpc.StatusCode:
    """The status of a call cancelled under its handler: DEADLINE_EXCEEDED once its deadline
    has passed, else CANCELLED (client gone, server stopping)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED
