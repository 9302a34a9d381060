"""StatisticsService when the projection cannot go on: its view is broken or disconnected."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from incident_registry_client.proto.incidents.v1 import statistics_service_pb2 as pb
from incident_registry_client.proto.incidents.v1.statistics_service_pb2_grpc import (
    StatisticsServiceStub,
)

from projections.store import view_application_name
from service.store.postgres import PostgresEventStore, PostgresSettings
from tests.support import builders as b
from tests.support.builders import ACTOR_METADATA, detail
from tests.support.harness import ServerHarness
from tests.support.stores import BOTH_STORES

POSTGRES_ONLY = pytest.mark.parametrize("backend_factory", ["postgres"], indirect=True)


@pytest.fixture
def statistics(channel):
    return StatisticsServiceStub(channel)


def request(min_position: int = 0) -> pb.GetAreaStatisticsRequest:
    return pb.GetAreaStatisticsRequest(
        area_kind=pb.AREA_KIND_MUNICIPALITY,
        period_kind=pb.PERIOD_KIND_DAY,
        min_position=min_position,
    )


def write(incidents) -> int:
    return int(incidents.ReportShooting(b.shooting(), metadata=ACTOR_METADATA).result.position)


def _connect(settings: PostgresSettings) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=settings.host,
        port=settings.port,
        dbname=settings.dbname,
        user=settings.user,
        password=settings.password,
        options=f"-c search_path={settings.schema}",
    )


@contextlib.contextmanager
def view_transaction(server: ServerHarness) -> Iterator[Any]:
    """A transaction on the projection's database that holds its write lock until it ends."""
    assert server.registry is not None
    backend = server.registry.backend
    if isinstance(backend, PostgresEventStore):
        with _connect(backend.settings) as conn:
            conn.execute("LOCK TABLE projection_state IN EXCLUSIVE MODE")
            yield conn
            conn.commit()
        return
    path = server.db_path.with_name(server.db_path.stem + "-projections.sqlite")
    lite = sqlite3.connect(str(path), isolation_level=None)
    try:
        lite.execute("BEGIN IMMEDIATE")
        yield lite
        lite.execute("COMMIT")
    finally:
        lite.close()


def wait_until_stopped(server: ServerHarness, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while server.projections.runner("statistics").failure is None:
        assert time.monotonic() < deadline, "the projection did not stop"
        time.sleep(0.02)
    return server.projections.runner("statistics").failure or ""


def read_once_caught_up(statistics, position: int, seconds: float) -> tuple[Any, Any]:
    """Read at `position`, retrying UNAVAILABLE for `seconds`: (status code, reply or details)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return grpc.StatusCode.OK, statistics.GetAreaStatistics(request(position), timeout=5)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                return err.code(), err.details()


@BOTH_STORES
def test_a_stopped_projection_is_failed_precondition_not_stale_rows(server, incidents, statistics):
    first = write(incidents)
    assert len(statistics.GetAreaStatistics(request(first), timeout=10).rows) == 1
    # Break the view under the projection: its next page cannot be applied.
    with view_transaction(server) as conn:
        conn.execute("DROP TABLE proj_incident_facts")
    write(incidents)
    assert "proj_incident_facts" in wait_until_stopped(server)

    for min_position in (0, first):
        with pytest.raises(grpc.RpcError) as failure:
            statistics.GetAreaStatistics(request(min_position), timeout=10)
        assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        (violation,) = detail(failure.value, error_details_pb2.PreconditionFailure).violations
        assert (violation.type, violation.subject) == (
            "projection_running",
            "projection/statistics",
        )
    # The rows and position it had are not moved by the failed page.
    assert server.projections.runner("statistics").position == first


@BOTH_STORES
def test_a_read_waiting_when_the_projection_stops_is_told_at_once(server, incidents, statistics):
    replies: list[Any] = []
    with view_transaction(server) as conn:
        # The projection reads the new event, then blocks on the lock to commit it...
        position = write(incidents)

        def read() -> None:
            started = time.monotonic()
            try:
                statistics.GetAreaStatistics(request(position), timeout=4.0)
            except grpc.RpcError as err:
                replies.append((err.code(), time.monotonic() - started))
            else:
                replies.append(("OK", time.monotonic() - started))

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(1.0)  # ...while a read waits for that position.
        conn.execute("DROP TABLE proj_incident_facts")  # the commit will fail: it stops
    reader.join(timeout=10)
    wait_until_stopped(server)
    ((code, elapsed),) = replies
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert elapsed < 3.0


@POSTGRES_ONLY
def test_the_projection_survives_losing_its_database_connection(
    server, incidents, statistics, postgres
):
    first = write(incidents)
    assert len(statistics.GetAreaStatistics(request(first), timeout=10).rows) == 1
    # Every session of the view store (the runners' and the readers').
    with psycopg.connect(
        host=postgres.host,
        port=postgres.port,
        dbname=postgres.dbname,
        user=postgres.user,
        password=postgres.password,
        autocommit=True,
    ) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (view_application_name(server.registry.backend.settings.schema),),
        ).fetchall()
        assert ended

    second = write(incidents)
    # Expected: the projection reconnects (as it retries when the store is down) and catches up.
    code, reply = read_once_caught_up(statistics, second, seconds=15)
    assert code == grpc.StatusCode.OK, reply
    assert reply.position >= second
    assert sum(row.incidents for row in reply.rows) == 2
