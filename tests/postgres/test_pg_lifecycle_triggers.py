"""With the lifecycle's operations log in place, the triggers still refuse every stray change
(raw psycopg, as a stray script would), and let through only eventkeep's removal path: a
DELETE needs an open operation written by the same transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from eventkeep import NewEvent, RawEvent
from eventkeep.backends.postgres import PostgresStore
from pg_fixtures import Target


@pytest.fixture
def store(pg_store: PostgresStore, tmp_path: Any) -> PostgresStore:
    pg_store._set_archive_dir(tmp_path / "archives", None)
    for n in range(4):
        pg_store.append("a", [NewEvent(RawEvent("Noted", {"n": n}), tags=[f"n:{n}"])])
        pg_store.append("b", [RawEvent("Noted", {"n": n})])
    pg_store.truncate("a", 2, by="test")
    return pg_store


@pytest.fixture
def conn(store: PostgresStore, target: Target) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(target.server.url, autocommit=True) as raw:
        raw.execute(f'SET search_path TO "{target.schema}"')
        yield raw


def refused(conn: psycopg.Connection[Any], statement: str, params: Any = ()) -> None:
    with pytest.raises(psycopg.errors.RestrictViolation, match="eventkeep:"):
        conn.execute(statement, params)


def test_stray_deletes_of_events_tags_and_the_log_are_refused(
    conn: psycopg.Connection[Any],
) -> None:
    refused(conn, "DELETE FROM events WHERE stream_id = 'a' AND version = 3")
    refused(conn, "DELETE FROM events")
    refused(conn, "DELETE FROM event_tags")
    refused(conn, "DELETE FROM eventkeep_operations")
    refused(conn, "DELETE FROM eventkeep_removed")
    refused(conn, "TRUNCATE eventkeep_operations")
    refused(conn, "TRUNCATE events")


def test_stray_updates_of_events_and_the_log_are_refused(conn: psycopg.Connection[Any]) -> None:
    refused(conn, "UPDATE events SET data_bytes = '{}' WHERE version = 3")
    refused(conn, "UPDATE eventkeep_operations SET reason = 'nothing happened'")
    refused(conn, "UPDATE eventkeep_operations SET state = 'open'")
    refused(conn, "UPDATE eventkeep_removed SET last_version = 1")


def test_an_open_operation_of_another_transaction_opens_no_door(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(
        "INSERT INTO eventkeep_operations (operation_id, kind, stream_id, state, recorded_at, "
        "actor, reason, events) VALUES ('forged', 'truncate', 'b', 'open', 0, 'x', '', 4)"
    )
    refused(
        conn,
        "INSERT INTO eventkeep_removed VALUES ('forged', 'b', 1, 4, 2, 8, 4, '\\x00')",
    )
    refused(conn, "DELETE FROM events WHERE stream_id = 'b'")
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (7,)


def test_the_removal_path_works_with_the_triggers_in_place(
    store: PostgresStore, conn: psycopg.Connection[Any]
) -> None:
    store.set_retention("b", max_count=1)
    assert store.compact().events == 3
    store.delete_stream("a", hard=True)
    assert store.verify().ok
    assert [e.stream_id for e in store.read_all()] == ["b"]
    assert conn.execute("SELECT count(*) FROM event_tags").fetchone() == (0,)
    states = conn.execute("SELECT DISTINCT state FROM eventkeep_operations").fetchall()
    assert states == [("done",)]


def test_a_row_deleted_past_the_triggers_is_reported_as_tampering(
    store: PostgresStore, conn: psycopg.Connection[Any]
) -> None:
    with conn.transaction():
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_delete")
        conn.execute("DELETE FROM events WHERE stream_id = 'b' AND version = 1")
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_delete")
    report = store.verify()
    assert [(b.stream_id, b.version) for b in report.broken] == [("b", 1)]


def test_a_copied_removal_of_a_whole_stream_is_its_head(
    store: PostgresStore, conn: psycopg.Connection[Any]
) -> None:
    """What a copy writes in one transaction: the operation open, its removals, closed. No head
    is stored (migration 0018): the stream's head is its last removed event, the stream is
    listed there, and an append takes its chain up from it."""
    store.delete_stream("b", hard=True)
    (removal,) = store.removals("b")
    with conn.transaction():
        conn.execute(
            "INSERT INTO eventkeep_operations (operation_id, kind, stream_id, state, recorded_at, "
            "actor, reason, events) VALUES ('copied', 'hard-delete', 'c', 'open', 0, 'x', '', 4)"
        )
        conn.execute(
            "INSERT INTO eventkeep_removed VALUES ('copied', 'c', 1, 4, 100, 103, 4, %s)",
            (removal.last_hash,),
        )
        conn.execute("UPDATE eventkeep_operations SET state = 'done' WHERE operation_id = 'copied'")
    assert store.stream_version("c") == 4
    assert ("c", 4, 103) in store.list_streams()
    assert store.append("c", [RawEvent("Noted", {"n": 5})], expected_version=4).versions == (5,)
    assert store.stream_version("c") == 5
    report = store.verify()
    assert report.ok, report
