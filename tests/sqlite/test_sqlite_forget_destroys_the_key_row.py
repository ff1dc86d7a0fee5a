"""On SQLite, ``forget`` deletes the key's row for good, bumps the epoch, and writes an
append-only forget log; a stray script sees only ciphertext and cannot rewrite the log.

Everything is checked through the stdlib ``sqlite3`` module, as a stray script would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import eventkeep
from eventkeep.testing.events import CustomerRegistered


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "personal.db"
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        for customer in ("c1", "c2"):
            store.append(
                f"customer-{customer}",
                [CustomerRegistered(customer_id=customer, email=f"{customer}@example.com")],
            )
        store.forget("c1", by="dpo", reason="ticket 7")
    return db


def test_the_forgotten_subjects_key_row_is_gone_and_the_epoch_moved(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        keys = conn.execute("SELECT subject, length(key) FROM personal_keys").fetchall()
        epoch = conn.execute("SELECT epoch FROM personal_key_epoch").fetchone()[0]
    assert keys == [("c2", 32)]
    assert epoch == 1


def test_the_stored_data_holds_no_plaintext_of_either_subject(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        stored = [row[0] for row in conn.execute("SELECT data FROM events ORDER BY position")]
    assert len(stored) == 2
    assert all("@example.com" not in data for data in stored)
    assert all('{"$eventkeep:personal":[' in data for data in stored)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE forgotten_subjects SET subject = 'x'", "DELETE FROM forgotten_subjects"],
)
def test_the_forget_log_refuses_update_and_delete(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT subject, by, reason, had_key FROM forgotten_subjects"
        ).fetchall()
    assert rows == [("c1", "dpo", "ticket 7", 1)]


def test_forget_writes_nothing_to_the_events_and_their_triggers_still_refuse(path: Path) -> None:
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET data = '{}' WHERE position = 1")
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        assert store.verify().ok
