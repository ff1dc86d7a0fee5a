"""A pooled connection keeps one cursor per format for the statements it runs one at a time
(appends, page reads): a new cursor per statement cost 20-25 µs of client CPU. A large page's
cursor is let go, so that an idle pooled connection never holds a large result alive."""

from __future__ import annotations

import pytest

import eventkeep
from eventkeep import ConcurrencyError, RawEvent, StreamAppend
from eventkeep.backends.postgres import PostgresStore
from eventkeep.backends.postgres.connection import _CURSORS, SMALL_RESULT
from pg_fixtures import Target


def cursors_of(store: PostgresStore) -> dict[bool, object]:
    with store._db.connection() as conn:
        return dict(_CURSORS.get(conn, {}))


def test_small_reads_and_appends_reuse_one_cursor_and_a_large_page_lets_it_go(
    target: Target,
) -> None:
    with eventkeep.open_store(target.url, pool_min_size=1, pool_max_size=1) as store:
        assert isinstance(store, PostgresStore)
        store.append("small", [RawEvent("pg.Small", {"n": n}) for n in range(3)])
        store.append_many(
            [
                StreamAppend(
                    "large", [RawEvent("pg.Large", {"n": n}) for n in range(SMALL_RESULT + 1)]
                )
            ]
        )
        assert [e.version for e in store.read_stream("small")] == [1, 2, 3]
        first = cursors_of(store)[True]
        assert [e.version for e in store.read_stream("small")] == [1, 2, 3]
        assert cursors_of(store)[True] is first  # the same cursor, reused

        assert len(list(store.read_stream("large"))) == SMALL_RESULT + 1
        assert True not in cursors_of(store)  # the large page's cursor is gone
        assert first.closed  # type: ignore[attr-defined]

        assert [e.version for e in store.read_stream("small")] == [1, 2, 3]
        assert cursors_of(store)[True] is not first


def test_a_statement_that_failed_on_a_reused_cursor_leaves_it_usable(target: Target) -> None:
    with eventkeep.open_store(target.url, pool_min_size=1, pool_max_size=1) as store:
        store.append("s", [RawEvent("pg.E", {"n": 1})], expected_version=0)
        with pytest.raises(ConcurrencyError):
            store.append("s", [RawEvent("pg.E", {"n": 2})], expected_version=0)
        store.append("s", [RawEvent("pg.E", {"n": 3})], expected_version=1)
        assert [e.data["n"] for e in store.read_stream("s")] == [1, 3]
