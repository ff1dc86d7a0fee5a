"""With the lifecycle's operations log in place, the triggers still refuse every stray change
(raw ``sqlite3``, as a stray script would), and let through only eventkeep's removal path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventkeep
from eventkeep import NewEvent, RawEvent

REFUSED = "eventkeep:"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two streams, one tagged, and a truncation of the first (so the log is not empty)."""
    path = tmp_path / "life.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        for n in range(4):
            store.append("a", [NewEvent(RawEvent("Noted", {"n": n}), tags=[f"n:{n}"])])
            store.append("b", [RawEvent("Noted", {"n": n})])
        store.truncate("a", 2, by="test")
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    raw = sqlite3.connect(db, isolation_level=None)
    yield raw
    raw.close()


def refused(conn: sqlite3.Connection, statement: str, params: tuple[object, ...] = ()) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=REFUSED):
        conn.execute(statement, params)


def test_stray_deletes_of_events_tags_heads_and_the_log_are_refused(
    conn: sqlite3.Connection,
) -> None:
    refused(conn, "DELETE FROM events WHERE stream_id = 'a' AND version = 3")
    refused(conn, "DELETE FROM events")
    refused(conn, "DELETE FROM event_tags")
    refused(conn, "DELETE FROM streams WHERE stream_id = 'b'")
    refused(conn, "DELETE FROM eventkeep_operations")
    refused(conn, "DELETE FROM eventkeep_removed")


def test_stray_updates_of_events_and_the_log_are_refused(conn: sqlite3.Connection) -> None:
    refused(conn, "UPDATE events SET data = '{}' WHERE version = 3")
    refused(conn, "UPDATE eventkeep_operations SET reason = 'nothing happened'")
    refused(conn, "UPDATE eventkeep_operations SET state = 'open'")
    refused(conn, "UPDATE eventkeep_removed SET last_version = 1")


def test_a_removal_row_for_a_closed_operation_opens_no_door(conn: sqlite3.Connection) -> None:
    (op,) = conn.execute("SELECT operation_id FROM eventkeep_operations").fetchone()
    refused(
        conn,
        "INSERT INTO eventkeep_removed VALUES (?, 'b', 1, 4, 2, 8, 4, x'00')",
        (op,),
    )
    refused(conn, "DELETE FROM events WHERE stream_id = 'b'")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 7


def test_an_open_operation_written_by_another_connection_opens_no_door(
    db: Path, conn: sqlite3.Connection
) -> None:
    """SQLite has no transaction ids: the operation a DELETE needs is the one this connection
    has just inserted (its rowid is last_insert_rowid())."""
    with sqlite3.connect(db, isolation_level=None) as other:
        other.execute(
            "INSERT INTO eventkeep_operations (operation_id, kind, stream_id, state, recorded_at, "
            "actor, reason, events) VALUES ('forged', 'truncate', 'b', 'open', 0, 'x', '', 4)"
        )
    refused(conn, "INSERT INTO eventkeep_removed VALUES ('forged', 'b', 1, 4, 2, 8, 4, x'00')")
    refused(conn, "DELETE FROM events WHERE stream_id = 'b'")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 7
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        assert any("forged" in problem for problem in store.verify().problems)


def test_the_removal_path_works_with_the_triggers_in_place(db: Path) -> None:
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        store.set_retention("b", max_count=1)
        assert store.compact().events == 3
        store.delete_stream("a", hard=True)
        assert store.verify().ok
        assert [e.stream_id for e in store.read_all()] == ["b"]
    with sqlite3.connect(db) as raw:
        triggers = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        assert {"events_are_append_only_delete", "event_tags_are_append_only_delete"} <= triggers
        assert raw.execute("SELECT count(*) FROM event_tags").fetchone()[0] == 0
        states = raw.execute("SELECT DISTINCT state FROM eventkeep_operations").fetchall()
        assert states == [("done",)]


def test_a_row_deleted_past_the_triggers_is_reported_as_tampering(db: Path) -> None:
    with sqlite3.connect(db, isolation_level=None) as raw:
        raw.execute("DROP TRIGGER events_are_append_only_delete")
        raw.execute("DELETE FROM events WHERE stream_id = 'b' AND version = 1")
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        report = store.verify()
    assert [(b.stream_id, b.version) for b in report.broken] == [("b", 1)]


def test_a_copy_can_write_the_head_of_a_stream_whose_events_were_all_removed(
    db: Path, tmp_path: Path
) -> None:
    """What a copy of a store does: the operation open, its removals, closed; then the head of
    a stream with no events left, naming the last removed event. A head naming anything else
    is still refused."""
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        store.delete_stream("b", hard=True)
        (removal,) = store.removals("b")
    copy = tmp_path / "copy.db"
    eventkeep.open_store(f"sqlite:///{copy}").close()
    raw = sqlite3.connect(copy, isolation_level=None)
    try:
        raw.execute("BEGIN")
        raw.execute(
            "INSERT INTO eventkeep_operations (operation_id, kind, stream_id, state, recorded_at, "
            "actor, reason, events, first_position, last_position) "
            "VALUES (?, 'hard-delete', 'b', 'open', 0, 'x', '', 4, ?, ?)",
            (removal.operation_id, removal.first_position, removal.last_position),
        )
        raw.execute("INSERT INTO eventkeep_removed VALUES (?, ?, ?, ?, ?, ?, ?, ?)", removal)
        raw.execute("UPDATE eventkeep_operations SET state = 'done'")
        refused(
            raw,
            "INSERT INTO streams VALUES ('b', ?, ?, ?)",
            (removal.last_version + 1, removal.last_position, removal.last_hash),
        )
        raw.execute(
            "INSERT INTO streams VALUES ('b', ?, ?, ?)",
            (removal.last_version, removal.last_position, removal.last_hash),
        )
        raw.execute("COMMIT")
    finally:
        raw.close()
    with eventkeep.open_store(f"sqlite:///{copy}") as store:
        assert store.verify().ok
        assert store.stream_version("b") == 4
