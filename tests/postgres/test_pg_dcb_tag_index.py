"""verify checks the tag index against the events' (hashed) tags on PostgreSQL too."""

from __future__ import annotations

import psycopg
import pytest

import eventkeep
from eventkeep import NewEvent, RawEvent
from pg_fixtures import PgServer, fresh_store_url


def test_verify_finds_a_tag_index_that_does_not_match_the_events(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    url = fresh_store_url(request, pg_server)
    with eventkeep.open_store(url) as store:
        store.append_events([NewEvent(RawEvent("Claimed", {}), tags=["username:ann", "x"])])
        assert store.verify().ok
        schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}".event_tags DISABLE TRIGGER USER')
        conn.execute(f"DELETE FROM \"{schema}\".event_tags WHERE tag = 'username:ann'")
    with eventkeep.open_store(url) as store:
        report = store.verify()
        assert not report.ok
        assert any("tag index: 1 tags" in p for p in report.problems)


ODD_TAGS = ['quote:"a"', "backslash:\\n\\", "accent:é", "emoji:🦉", "slash:/u0041", "comma:a,b"]


@pytest.mark.parametrize("one_event", [True, False])
def test_the_tag_index_holds_each_tag_as_given_whatever_its_characters(
    pg_server: PgServer, request: pytest.FixtureRequest, one_event: bool
) -> None:
    """One event's tag rows are read by the server from its JSON tags column (APPEND_TAGGED_EVENT),
    several events' from arrays: both store each tag exactly, so queries and verify agree."""
    url = fresh_store_url(request, pg_server)
    with eventkeep.open_store(url) as store:
        events = [NewEvent(RawEvent("Claimed", {}), tags=ODD_TAGS)]
        if not one_event:
            events.append(NewEvent(RawEvent("Claimed", {}), tags=["other"]))
        store.append("store-1", [RawEvent("Noted", {})])  # reads first: learns the clock
        written = store.append_events(events)
        for tag in ODD_TAGS:
            found = store.read(eventkeep.Query([eventkeep.QueryItem(tags=[tag])]))
            assert [e.position for e in found] == [written.positions[0]], tag
        assert store.verify().ok
        schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT tag FROM "{schema}".event_tags WHERE position = %s ORDER BY tag',
            (written.positions[0],),
        ).fetchall()
    assert [tag for (tag,) in rows] == sorted(ODD_TAGS)
