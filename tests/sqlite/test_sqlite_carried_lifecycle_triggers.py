"""A SQLite store that received another store's operations log (by ``copy``) keeps every
append-only trigger: what the carry wrote opens no door for stray changes (raw ``sqlite3``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import eventkeep
from eventkeep.moving import copy_store
from eventkeep.testing.contract_carry import lifecycle_state, with_lifecycle

REFUSED = "eventkeep:"


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    path = tmp_path / "copy.db"
    with (
        eventkeep.open_store(f"sqlite:///{tmp_path / 'source.db'}") as source,
        eventkeep.open_store(f"sqlite:///{path}") as target,
    ):
        with_lifecycle(source)
        copy_store(source, target)
        assert lifecycle_state(target) == lifecycle_state(source)
    return path


def test_stray_changes_to_a_copied_store_are_refused(copied: Path) -> None:
    conn = sqlite3.connect(copied, isolation_level=None)
    try:
        for statement in (
            "DELETE FROM events WHERE stream_id = 'trunc-1'",
            "DELETE FROM streams WHERE stream_id = 'hard-1'",
            "DELETE FROM eventkeep_operations",
            "DELETE FROM eventkeep_removed",
            "UPDATE eventkeep_operations SET reason = 'nothing happened'",
            "UPDATE eventkeep_operations SET state = 'open'",
            "UPDATE eventkeep_removed SET last_version = 1",
            "UPDATE streams SET version = 1 WHERE stream_id = 'hard-1'",
        ):
            with pytest.raises(sqlite3.IntegrityError, match=REFUSED):
                conn.execute(statement)
    finally:
        conn.close()


def test_a_head_naming_a_removal_is_refused_while_its_stream_holds_events(copied: Path) -> None:
    conn = sqlite3.connect(copied, isolation_level=None)
    try:
        stream, version, position, digest = conn.execute(
            "SELECT stream_id, last_version, last_position, last_hash FROM eventkeep_removed "
            "WHERE stream_id = 'trunc-1'"
        ).fetchone()
        conn.execute("BEGIN")
        with pytest.raises(sqlite3.IntegrityError, match=REFUSED):
            conn.execute(
                "INSERT OR REPLACE INTO streams (stream_id, version, last_position, last_hash) "
                "VALUES (?, ?, ?, ?)",
                (stream, version, position, digest),
            )
        conn.execute("ROLLBACK")
    finally:
        conn.close()
