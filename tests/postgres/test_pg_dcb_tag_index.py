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
