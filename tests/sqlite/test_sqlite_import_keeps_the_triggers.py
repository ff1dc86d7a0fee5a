"""An import writes through the same triggers as appends: they stay in place, and refuse stray
UPDATE and DELETE of imported events and heads afterwards."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import eventkeep
from moving_helpers import fill


def test_imported_events_and_heads_are_append_only_like_any_other(tmp_path: Path) -> None:
    with eventkeep.open_store("memory://") as source:
        fill(source, 50)
        rows = list(source.export())
    path = tmp_path / "imported.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        assert store.import_(rows).written == 50
    conn = sqlite3.connect(path)
    try:
        for statement in (
            "UPDATE events SET data = '{}' WHERE position = 1",
            "DELETE FROM events WHERE position = 50",
            "UPDATE streams SET version = 1 WHERE stream_id = 'account-0'",
            "DELETE FROM streams",
            "DELETE FROM event_tags",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="eventkeep"):
                conn.execute(statement)
        triggers = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert {"events_are_append_only_update", "streams_head_matches_update"} <= triggers
    finally:
        conn.close()
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        assert store.verify().ok
