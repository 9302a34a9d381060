"""A PostgreSQL server for tests, and a fresh schema per test.

Where a Docker engine is reachable, a throw-away server is started with testcontainers;
otherwise the server named by INCIDENTS_TEST_POSTGRES_* (default 127.0.0.1:5432, user
postgres, trust auth) is used. The PostgreSQL tests never skip: a missing server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from service.store.postgres import PostgresSettings


def _docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]  # noqa: PLC0415 - optional

        docker.from_env(timeout=2).ping()
    except Exception:  # any failure means there is no engine to use
        return False
    return True


@contextmanager
def postgres_server() -> Iterator[PostgresSettings]:
    """Yield settings of a running server (a container if Docker runs, else the local one)."""
    if os.environ.get("INCIDENTS_TEST_POSTGRES_HOST") is None and _docker_reachable():
        from testcontainers.postgres import PostgresContainer  # noqa: PLC0415 - optional

        with PostgresContainer("postgres:16-alpine") as container:
            yield PostgresSettings(
                host=container.get_container_host_ip(),
                port=int(container.get_exposed_port(5432)),
                dbname=container.dbname,
                user=container.username,
                password=container.password,
            )
        return
    yield PostgresSettings(
        host=os.environ.get("INCIDENTS_TEST_POSTGRES_HOST", "127.0.0.1"),
        port=int(os.environ.get("INCIDENTS_TEST_POSTGRES_PORT", "5432")),
        dbname=os.environ.get("INCIDENTS_TEST_POSTGRES_DB", "postgres"),
        user=os.environ.get("INCIDENTS_TEST_POSTGRES_USER", "postgres"),
        password=os.environ.get("INCIDENTS_TEST_POSTGRES_PASSWORD", ""),
    )


def _conninfo(settings: PostgresSettings) -> str:
    return psycopg.conninfo.make_conninfo(
        host=settings.host,
        port=settings.port,
        dbname=settings.dbname,
        user=settings.user,
        password=settings.password,
        connect_timeout=5,
    )


@contextmanager
def fresh_schema(server: PostgresSettings) -> Iterator[PostgresSettings]:
    """Create an empty schema for one test and drop it afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_conninfo(server), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield PostgresSettings(
            host=server.host,
            port=server.port,
            dbname=server.dbname,
            user=server.user,
            password=server.password,
            schema=schema,
            pool_size=3,
            max_overflow=4,
        )
    finally:
        with psycopg.connect(_conninfo(server), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
