"""Checks of a PostgreSQL store's bulk load (eventkeep.backends.postgres.bulk), read straight
from the catalog and the store's tables with a connection of their own."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import eventkeep
from pg_fixtures import Target

SECONDARY = [
    "events_by_category",
    "events_by_type",
    "events_event_id_key",
    "events_position",
    "events_stream_starts",
]
"""The events table's indexes a bulk load drops and builds again (all but its primary key)."""


def event_indexes(target: Target) -> list[str]:
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'events' "
            "ORDER BY indexname",
            (target.schema,),
        ).fetchall()
    return [row[0] for row in rows]


def bulk_state(target: Target) -> list[Any]:
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        return conn.execute(
            f"SELECT source, last_position FROM {target.schema}.eventkeep_bulk_load"
        ).fetchall()


def assert_bulk_load_left(target: Target, held: int) -> None:
    """The store a killed bulk load left: recorded, refusing a normal open, without its
    secondary indexes, holding ``held`` events, and append-only all the same."""
    assert event_indexes(target) == ["events_pkey"]
    [(source, last_position)] = bulk_state(target)
    assert last_position == held
    assert "sqlite:///" in source
    with pytest.raises(eventkeep.IntegrityError, match="unfinished `eventkeep copy`") as caught:
        eventkeep.open_store(target.url)
    assert "Run the same `eventkeep copy` command again" in str(caught.value)
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        for statement in (
            f"UPDATE {target.schema}.events SET data_bytes = '{{}}' WHERE version = 1",
            f"DELETE FROM {target.schema}.events WHERE version = 2",
            f"TRUNCATE {target.schema}.events",
        ):
            with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
                conn.execute(statement)


def assert_bulk_load_finished(target: Target) -> None:
    """Every index back, the load's record gone, the store opening as any other."""
    assert event_indexes(target) == sorted(["events_pkey", *SECONDARY])
    assert bulk_state(target) == []
    eventkeep.open_store(target.url).close()
