"""verify checks the tag index against the events' (hashed) tags: an index entry removed or
added behind the store's back would make queries and append conditions wrong."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import eventkeep
from eventkeep import NewEvent, RawEvent


def test_verify_finds_a_tag_index_that_does_not_match_the_events(tmp_path: Path) -> None:
    path = tmp_path / "tags.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        store.append_events([NewEvent(RawEvent("Claimed", {}), tags=["username:ann", "x"])])
        assert store.verify().ok
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER event_tags_are_append_only_delete")
    conn.execute("DELETE FROM event_tags WHERE tag = 'username:ann'")
    conn.execute("INSERT INTO event_tags (tag, position, type) VALUES ('forged', 1, 'Claimed')")
    conn.close()
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        report = store.verify()
        assert not report.ok
        assert any("tag index: 1 tags" in p and "1 entries" in p for p in report.problems)
        assert store.verify(deep=False).ok  # the chains themselves are intact
