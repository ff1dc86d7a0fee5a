"""Schema version 18 stores no stream heads: opening a store written at schema 17 drops the
`streams` table (its rows, upsert and trigger) and builds the index of the streams' first
events; every stream keeps its version, its place in the listing and its chain, and appends go
on from the events. Tested on a schema built by the released migrations 1-17, written the way
eventkeep 17 wrote (an event and its stream's head row in one statement)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

import eventkeep
from eventkeep import RawEvent
from eventkeep.backends.postgres.connection import quoted
from eventkeep.store.codec import PreparedEvent
from eventkeep.store.hashing import GENESIS, chain_events
from eventkeep.store.migrations import load_migrations
from eventkeep.store.recorded import to_micros
from pg_fixtures import Target

# eventkeep 17's single-event append (numbered by the sequencer's function, head upserted).
APPEND_17 = (
    "WITH inserted AS (INSERT INTO events (position, stream_id, version, event_id, type, "
    "schema_version, recorded_at, data_bytes, metadata_bytes, hash, tags) "
    "SELECT (SELECT eventkeep_append_position()) + 1, %s, %s, %s, 'pg.Old', 1, %s, %s, "
    "'{}'::bytea, %s, NULL RETURNING position) "
    "INSERT INTO streams (stream_id, version, last_hash, last_recorded_at) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "last_hash = excluded.last_hash, last_recorded_at = excluded.last_recorded_at"
)

STREAMS = {"account-1": 3, "account-2": 1, "order-7": 4}


def build_schema_version_17(target: Target) -> None:
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {quoted(target.schema)}")
        conn.execute(f"SET search_path TO {quoted(target.schema)}")
        conn.execute(
            "CREATE TABLE eventkeep_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations("eventkeep.backends.postgres")[:17]:
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO eventkeep_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        for version in range(1, max(STREAMS.values()) + 1):  # interleaved, as appends come
            for stream_id, length in STREAMS.items():
                if version <= length:
                    _append_17(conn, stream_id, version)


def _append_17(conn: psycopg.Connection[Any], stream_id: str, version: int) -> None:
    row = conn.execute(
        "SELECT hash FROM events WHERE stream_id = %s AND version = %s", (stream_id, version - 1)
    ).fetchone()
    previous = GENESIS if row is None else bytes(row[0])
    now = datetime.now(UTC)
    data = f'{{"n":{version}}}'.encode()
    event = PreparedEvent(uuid.uuid4().bytes, "pg.Old", 1, data, b"{}")
    (digest,) = chain_events(previous, stream_id, version - 1, [event], to_micros(now))
    with conn.transaction():
        event_id = uuid.UUID(bytes=event.event_id)
        head = (stream_id, version, digest, now)
        conn.execute(APPEND_17, (stream_id, version, event_id, now, data, digest, *head))


def test_a_store_written_at_schema_17_keeps_its_streams_without_the_heads_table(
    target: Target,
) -> None:
    build_schema_version_17(target)
    with eventkeep.open_store(target.url) as store:
        assert {s.stream_id: s.version for s in store.list_streams()} == STREAMS
        assert [s.stream_id for s in store.list_streams("account-")] == ["account-1", "account-2"]
        assert store.stats().streams == 3
        assert store.stream_version("order-7") == 4
        more = store.append("account-1", [RawEvent("pg.New", {})], expected_version=3)
        assert (more.versions, more.position) == ((4,), 9)
        new = store.append("new-1", [RawEvent("pg.New", {})], expected_version=0)
        assert (new.versions, new.position) == ((1,), 10)
        assert store.stats().streams == 4
        report = store.verify()
        assert report.ok, report
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {quoted(target.schema)}")
        assert conn.execute("SELECT to_regclass('streams')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('events_stream_starts')").fetchone() is not None
        assert conn.execute("SELECT max(version) FROM eventkeep_migrations").fetchone() >= (18,)
