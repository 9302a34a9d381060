"""A bare gRPC echo server: the baseline that benchmarks/append.py compares the registry with.

It serves the registry's ReportShooting method path with identity (None) serializers and
answers every call with the request bytes unchanged, so a client sees the same transport,
framing and message sizes as against the registry, minus everything the registry does.
It is built with the same grpc server options as `service.api.server.start_server`.

    python benchmarks/echo_server.py --port 50061

It stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import grpc
from incident_registry_client.proto.incidents.v1 import incident_service_pb2

from service.api.server import MAX_MESSAGE_BYTES

SERVICE = incident_service_pb2.DESCRIPTOR.services_by_name["IncidentService"]
METHOD = SERVICE.methods_by_name["ReportShooting"]
METHOD_PATH = f"/{SERVICE.full_name}/{METHOD.name}"

# Mirrors the options list of service.api.server.start_server (no extra options are passed
# by `python -m service`).
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


async def _echo(request: bytes, _context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


def build_server(address: str) -> tuple[grpc.aio.Server, int]:
    """Return an unstarted echo server bound to `address`, and the port it got."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        SERVICE.full_name,
        {
            METHOD.name: grpc.unary_unary_rpc_method_handler(
                _echo, request_deserializer=None, response_serializer=None
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(address)
    if port == 0:
        msg = f"cannot listen on {address}"
        raise OSError(msg)
    return server, port


async def serve(address: str) -> None:
    """Serve echo calls on `address` until SIGTERM or SIGINT."""
    server, _port = build_server(address)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(0)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(f"{args.host}:{args.port}"))
    except OSError as err:
        print(f"echo server failed to start: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
