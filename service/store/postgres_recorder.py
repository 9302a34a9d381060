"""The PostgreSQL event store's tables, settings and recorder (the library's, extended).

The recorder adds the request, tag and subject-key tables to the library's events table, one
NOTIFY channel per schema, and the append transaction's start: `BEGIN` with the library's
EXCLUSIVE table lock, in one round trip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

EVENTS_TABLE = "stored_events"
REQUESTS_TABLE = "accepted_requests"
SUBJECT_KEYS_TABLE = "subject_keys"
TAGS_TABLE = "event_tags"
SCHEMA_LOCK = 7_260_417_395
"""Advisory lock key held while creating the registry's tables (any fixed 64-bit number)."""


@dataclass(frozen=True)
class PostgresSettings:
    """Where the database is and how many connections to keep."""

    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "postgres"
    user: str = "postgres"
    password: str = ""
    schema: str = "public"
    pool_size: int = 5
    max_overflow: int = 5
    connect_timeout: float = 5.0
    lock_timeout: int = 5
    idle_in_transaction_timeout: float = 30.0


def channel_name(schema: str) -> str:
    """The NOTIFY channel of the event store in `schema` (at most 63 bytes, as PostgreSQL wants)."""
    name = f"{schema}.{EVENTS_TABLE}"
    if len(name.encode()) <= 63:
        return name
    return f"{EVENTS_TABLE}.{hashlib.sha256(schema.encode()).hexdigest()[:32]}"


class RegistryPostgresRecorder(PostgresApplicationRecorder):
    """The library's application recorder with request and tag tables."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, events_table_name=EVENTS_TABLE)
        # One channel per schema: registries in other schemas of the database are not ours.
        self.channel_name = channel_name(datastore.schema)
        schema = Identifier(datastore.schema)
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0}.{1} ("
                    "request_id text PRIMARY KEY, "
                    "fingerprint text NOT NULL, "
                    "aggregate_id uuid NOT NULL, "
                    "version bigint NOT NULL, "
                    "position bigint NOT NULL)"
                ).format(schema, Identifier(REQUESTS_TABLE)),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0}.{1} ("
                    "tag text NOT NULL, "
                    "position bigint NOT NULL, "
                    "PRIMARY KEY (tag, position))"
                ).format(schema, Identifier(TAGS_TABLE)),
                # Exports read the tags of a range of positions.
                SQL("CREATE INDEX IF NOT EXISTS {0} ON {1}.{2} (position)").format(
                    Identifier(f"{TAGS_TABLE}_by_position"), schema, Identifier(TAGS_TABLE)
                ),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0}.{1} ("
                    "subject_id uuid PRIMARY KEY, "
                    "key bytea NOT NULL)"
                ).format(schema, Identifier(SUBJECT_KEYS_TABLE)),
            ]
        )

    def create_table(self) -> None:
        """Create the tables, one process at a time.

        Servers and workers starting together would otherwise race: PostgreSQL's
        CREATE ... IF NOT EXISTS and CREATE OR REPLACE FUNCTION are not safe against the same
        statement running concurrently in another session.
        """
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK])
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [SCHEMA_LOCK])

    def begin_append(self, cursor: Cursor[DictRow]) -> None:
        """Begin an append's transaction holding the table lock, in one round trip.

        The EXCLUSIVE lock keeps positions in commit order: a follower never passes over a
        position that a transaction still in flight fills in later. The appending statement
        NOTIFYs the channel with the new head on commit.
        """
        cursor.execute(SQL("; ").join([SQL("BEGIN"), *self.lock_table_statements]))
