"""Cross-cutting work for every RPC: request context, access log, error mapping."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc
import structlog
from google.protobuf.message import DecodeError

from service.api.errors import status_for
from service.api.servicers.common import headers
from service.domain.errors import RegistryError

log = structlog.get_logger("service.api")

Context = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
_INFRASTRUCTURE_PREFIX = "/grpc."


class RegistryInterceptor(grpc.aio.ServerInterceptor):
    """Binds request ids to logs, writes one access log line per call, maps errors to statuses.

    Requests are parsed here rather than by grpc, so that undecodable bytes are answered with
    INVALID_ARGUMENT instead of grpc's INTERNAL; anything unexpected becomes INTERNAL, logged
    with its traceback, and never leaks its message to the caller.
    """

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the unary handlers of the registry's own services."""
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_INFRASTRUCTURE_PREFIX):
            return handler
        if handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary(
                method, cast("UnaryBehavior", handler.unary_unary), handler.request_deserializer
            ),
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )


def _wrap_unary(
    method: str, behavior: UnaryBehavior, deserialize: Callable[[bytes], Any] | None
) -> UnaryBehavior:
    async def wrapper(raw: bytes, context: Context) -> Any:
        started = time.perf_counter()
        meta = headers(context)
        code = grpc.StatusCode.OK
        request_id = ""
        with structlog.contextvars.bound_contextvars(
            rpc=method,
            correlation_id=meta.get("x-correlation-id", ""),
        ):
            try:
                try:
                    request = deserialize(raw) if deserialize else raw
                except (DecodeError, ValueError, RuntimeError) as err:
                    code = grpc.StatusCode.INVALID_ARGUMENT
                    await context.abort(code, f"request is not a valid protobuf message: {err}")
                request_id = getattr(request, "request_id", "")
                structlog.contextvars.bind_contextvars(request_id=request_id)
                return await behavior(request, context)
            except RegistryError as err:
                code, message, trailing = status_for(err)
                await context.abort(code, message, trailing_metadata=trailing)
            except grpc.aio.AbortError:
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc_failed")
                await context.abort(code, "internal error; the failure was logged")
            finally:
                log.info(
                    "rpc_completed",
                    code=code.name,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    actor=meta.get("x-actor", ""),
                )

    return wrapper
