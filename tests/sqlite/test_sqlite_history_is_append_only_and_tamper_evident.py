"""The database refuses to rewrite history, and ``verify`` finds history rewritten behind its back.

Everything here goes through the stdlib ``sqlite3`` module, as a stray script would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventkeep
from eventkeep import RawEvent, StreamAppend

STREAM_LENGTHS = {"alpha": 4, "beta": 5, "gamma": 3}
TOTAL = sum(STREAM_LENGTHS.values())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with three interleaved streams (one written with ``append_many``)."""
    path = tmp_path / "history.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        for version in range(1, 6):
            appends = [
                StreamAppend(
                    stream,
                    [RawEvent("Deposited", {"amount": f"{version}.00", "n": version})],
                    version - 1,
                    {"user": "alice"},
                )
                for stream, length in STREAM_LENGTHS.items()
                if version <= length
            ]
            store.append_many(appends)
        assert store.verify().ok
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    raw = sqlite3.connect(db, isolation_level=None)
    yield raw
    raw.close()


def snapshot(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM events ORDER BY position").fetchall()


def verify(db: Path) -> eventkeep.VerifyReport:
    """``verify`` from a freshly opened store, as an auditor would run it."""
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        return store.verify()


# -- the triggers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}'",
        "UPDATE events SET data = json_set(data, '$.amount', '999.00') WHERE position = 3",
        "UPDATE events SET stream_id = 'other' WHERE stream_id = 'beta'",
        "INSERT INTO events SELECT * FROM events WHERE position = 1 "
        "ON CONFLICT (position) DO UPDATE SET type = 'Withdrawn'",
    ],
)
def test_raw_update_is_refused_and_changes_nothing(
    conn: sqlite3.Connection, statement: str
) -> None:
    before = snapshot(conn)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    assert snapshot(conn) == before


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM events",
        "DELETE FROM events WHERE stream_id = 'gamma' AND version = 3",
    ],
)
def test_raw_delete_is_refused_and_changes_nothing(
    db: Path, conn: sqlite3.Connection, statement: str
) -> None:
    before = snapshot(conn)
    with pytest.raises(sqlite3.IntegrityError, match="append-only; DELETE is refused"):
        conn.execute(statement)
    assert snapshot(conn) == before
    assert verify(db).ok


def test_a_refused_statement_inside_a_transaction_leaves_it_usable(
    conn: sqlite3.Connection,
) -> None:
    before = snapshot(conn)
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events WHERE position = 1")
    conn.execute("COMMIT")
    assert snapshot(conn) == before


# -- tampering behind the triggers' back ---------------------------------------------------------


def tamper(conn: sqlite3.Connection, statement: str) -> None:
    """Drop the append-only triggers, run ``statement``, put the triggers back."""
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
    ).fetchall()
    assert len(triggers) == 3
    conn.execute("BEGIN IMMEDIATE")
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    assert conn.execute(statement).rowcount == 1
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute("COMMIT")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")  # the triggers are back


BETA_3 = "WHERE stream_id = 'beta' AND version = 3"


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            f"UPDATE events SET data = json_set(data, '$.amount', '999.00') {BETA_3}", id="data"
        ),
        pytest.param(f"UPDATE events SET data = data || ' ' {BETA_3}", id="data-whitespace-only"),
        pytest.param(
            f"UPDATE events SET metadata = json_set(metadata, '$.user', 'mallory') {BETA_3}",
            id="metadata",
        ),
        pytest.param(f"UPDATE events SET type = 'Withdrawn' {BETA_3}", id="type"),
        pytest.param(f"UPDATE events SET schema_version = 2 {BETA_3}", id="schema-version"),
        pytest.param(
            f"UPDATE events SET recorded_at = recorded_at - 86400000000 {BETA_3}", id="recorded-at"
        ),
        pytest.param(f"UPDATE events SET event_id = randomblob(16) {BETA_3}", id="event-id"),
    ],
)
def test_an_edited_event_is_reported_at_its_stream_and_version(
    db: Path, conn: sqlite3.Connection, edit: str
) -> None:
    position = conn.execute(f"SELECT position FROM events {BETA_3}").fetchone()[0]
    tamper(conn, edit)
    report = verify(db)
    assert report.events_checked == TOTAL
    assert report.streams_checked == len(STREAM_LENGTHS)
    assert len(report.broken) == 1, report.broken  # alpha and gamma stay all-clear
    link = report.broken[0]
    assert (link.stream_id, link.version, link.position) == ("beta", 3, position)
    assert not report.ok


@pytest.mark.parametrize(
    ("stream", "version", "reason"),
    [
        pytest.param("beta", 5, "missing", id="last"),
        pytest.param("alpha", 2, "version 2 is missing", id="middle"),
        pytest.param("gamma", 1, "version 1 is missing", id="first"),
    ],
)
def test_a_deleted_event_is_reported_at_its_stream_and_version(
    db: Path, conn: sqlite3.Connection, stream: str, version: int, reason: str
) -> None:
    tamper(conn, f"DELETE FROM events WHERE stream_id = '{stream}' AND version = {version}")
    report = verify(db)
    assert report.events_checked == TOTAL - 1
    assert len(report.broken) == 1, report.broken  # the other streams stay all-clear
    link = report.broken[0]
    assert (link.stream_id, link.version) == (stream, version)
    assert reason in link.reason


REPLACE_BETA_3 = (
    "INSERT OR REPLACE INTO events SELECT position, stream_id, version, event_id, type, "
    "schema_version, json_set(data, '$.amount', '999.00'), metadata, recorded_at, hash, tags "
    f"FROM events {BETA_3}"
)


@pytest.mark.parametrize(
    "statement",
    [
        REPLACE_BETA_3,
        REPLACE_BETA_3.replace("INSERT OR REPLACE", "REPLACE"),
        # a new row that takes a stored event's stream version, or its event id
        "INSERT OR REPLACE INTO events (stream_id, version, event_id, type, schema_version, data,"
        " metadata, recorded_at, hash) SELECT stream_id, version, randomblob(16), type, "
        f"schema_version, data, metadata, recorded_at, hash FROM events {BETA_3}",
        "INSERT OR REPLACE INTO events (stream_id, version, event_id, type, schema_version, data,"
        " metadata, recorded_at, hash) SELECT 'new', 1, event_id, type, schema_version, data, "
        f"metadata, recorded_at, hash FROM events {BETA_3}",
    ],
)
def test_insert_or_replace_is_refused_and_changes_nothing(
    conn: sqlite3.Connection, statement: str
) -> None:
    # REPLACE deletes the conflicting row without firing DELETE triggers (SQLite runs them for
    # REPLACE only under PRAGMA recursive_triggers), so a BEFORE INSERT trigger refuses it.
    before = snapshot(conn)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    assert snapshot(conn) == before


def test_an_event_rewritten_with_insert_or_replace_is_reported(
    db: Path, conn: sqlite3.Connection
) -> None:
    tamper(conn, REPLACE_BETA_3)
    report = verify(db)
    assert report.events_checked == TOTAL
    assert [(b.stream_id, b.version) for b in report.broken] == [("beta", 3)]


def test_events_appended_after_tampering_do_not_hide_it(db: Path, conn: sqlite3.Connection) -> None:
    tamper(conn, f"UPDATE events SET data = json_set(data, '$.amount', '999.00') {BETA_3}")
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        store.append("beta", [RawEvent("Deposited", {"amount": "6.00"})], 5)
        store.append("delta", [RawEvent("Deposited", {"amount": "1.00"})], 0)
    report = verify(db)
    assert report.events_checked == TOTAL + 2
    assert report.streams_checked == len(STREAM_LENGTHS) + 1
    assert [(b.stream_id, b.version) for b in report.broken] == [("beta", 3)]
