"""Schema version 5 numbers, once, the events an eventkeep older than schema version 4 left
unnumbered, then makes every position NOT NULL and drops the machinery that numbered them on
read (the pending index, the position-once trigger, eventkeep_sequence and
eventkeep_positions). Tested on a schema built by the released migrations 1-4."""

from __future__ import annotations

import psycopg
import pytest
from pg_harness import insert_uncommitted, raw_connection

import eventkeep
from eventkeep import RawEvent
from eventkeep.backends.postgres.connection import quoted
from eventkeep.store.migrations import load_migrations
from pg_fixtures import Target


def build_schema_version_4(target: Target) -> None:
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        schema = quoted(target.schema)
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(
            "CREATE TABLE eventkeep_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations("eventkeep.backends.postgres")[:4]:
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO eventkeep_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )


def test_opening_an_older_schema_numbers_what_was_left_unnumbered_and_drops_the_machinery(
    target: Target,
) -> None:
    build_schema_version_4(target)
    old = raw_connection(target.base_url, target.schema)
    try:
        # An older writer: two events committed, never numbered (it died in between).
        ids = insert_uncommitted(old, "orphan", 2)
        old.execute("COMMIT")
        unnumbered = old.execute("SELECT count(*) FROM events WHERE position IS NULL")
        assert unnumbered.fetchone() == (2,)
    finally:
        old.close()

    with eventkeep.open_store(target.url) as store:
        assert [str(e.event_id) for e in store.read_all()] == ids
        assert [e.position for e in store.read_stream("orphan")] == [1, 2]
        assert store.append("after", [RawEvent("pg.After", {})]).position == 3
        assert store.verify().ok

    admin = raw_connection(target.base_url, target.schema)
    try:
        nullable = admin.execute(
            "SELECT is_nullable FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'events' AND column_name = 'position'",
            (target.schema,),
        ).fetchone()
        assert nullable == ("NO",)
        for name in ("eventkeep_sequence", "eventkeep_positions"):
            found = admin.execute(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND p.proname = %s",
                (target.schema, name),
            ).fetchone()
            assert found == (0,), name
        assert admin.execute("SELECT to_regclass('events_pending')").fetchone() == (None,)
        with pytest.raises(psycopg.IntegrityError, match="append-only"):
            admin.execute("UPDATE events SET position = 99 WHERE version = 1")
    finally:
        admin.close()
