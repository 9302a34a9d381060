"""`incident-registry-health` against real servers: the registry's, and a bare health service."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from service.api.server import LIVENESS, READINESS
from service.healthcheck import connect_address, default_address, main
from tests.deploy.files import free_port


@pytest.fixture
def not_ready() -> Iterator[str]:
    """A gRPC server whose "readiness" is NOT_SERVING and "liveness" SERVING."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    servicer.set(READINESS, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.mark.parametrize("service", [READINESS, LIVENESS, ""])
def test_serving_server_exits_0(server, service, capsys):
    assert main(["--address", server.target, "--service", service]) == 0
    assert capsys.readouterr().err == ""


def test_readiness_is_asked_by_default(server):
    assert main(["--address", server.target], env={}) == 0


def test_the_address_comes_from_the_listen_address(server):
    # The image listens on 0.0.0.0: the check connects to the loopback address instead.
    env = {"INCIDENTS_LISTEN_ADDRESS": f"0.0.0.0:{server.port}"}
    assert main([], env=env) == 0


def test_an_unknown_service_name_exits_1(server, capsys):
    assert main(["--address", server.target, "--service", "no.such.Service"]) == 1
    err = capsys.readouterr().err
    assert "unknown health service name" in err
    assert "'no.such.Service'" in err


def test_not_serving_exits_1(not_ready, capsys):
    assert main(["--address", not_ready]) == 1
    assert "is NOT_SERVING" in capsys.readouterr().err
    assert main(["--address", not_ready, "--service", LIVENESS]) == 0


def test_an_unreachable_server_exits_1(capsys):
    address = f"127.0.0.1:{free_port()}"
    assert main(["--address", address, "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert address in err
    assert "UNAVAILABLE" in err


def test_a_stopped_server_exits_1(server):
    target = server.target
    assert main(["--address", target]) == 0
    server.stop()
    assert main(["--address", target, "--timeout", "2"]) == 1


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error_that_exits_1(timeout, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--timeout", timeout])
    assert exited.value.code == 1
    assert "--timeout" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("listen", "connect"),
    [
        ("0.0.0.0:50051", "127.0.0.1:50051"),
        ("[::]:6000", "127.0.0.1:6000"),
        (":7000", "127.0.0.1:7000"),
        ("localhost:50051", "localhost:50051"),
        ("10.1.2.3:50051", "10.1.2.3:50051"),
        ("[::1]:50051", "[::1]:50051"),
        ("unix:/run/registry.sock", "unix:/run/registry.sock"),
    ],
)
def test_connect_address_replaces_only_wildcard_hosts(listen, connect):
    assert connect_address(listen) == connect


def test_default_address():
    assert default_address({}) == "localhost:50051"
    assert default_address({"INCIDENTS_LISTEN_ADDRESS": " "}) == "localhost:50051"
    assert default_address({"INCIDENTS_LISTEN_ADDRESS": "0.0.0.0:1234"}) == "127.0.0.1:1234"
