"""Query reads and append conditions (DCB) are served by indexes on PostgreSQL: the plans say so
(on a store of 20,000 tagged events, analyzed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import eventkeep
from eventkeep import NewEvent, Query, QueryItem, RawEvent
from eventkeep.backends.postgres import dcb
from pg_fixtures import PgServer, new_schema_name, with_schema

QUERIES = {
    "one tag": Query([QueryItem(tags=["student:7"])]),
    "type and two tags": Query([QueryItem(types=["Enrolled"], tags=["student:7", "course:3"])]),
    "types only": Query([QueryItem(types=["Enrolled", "Opened"])]),
    "two items": Query(
        [QueryItem(types=["Opened"], tags=["course:3"]), QueryItem(tags=["student:7"])]
    ),
}
EVENTS = 20_000


@pytest.fixture(scope="module")
def conn(pg_server: PgServer) -> Iterator[psycopg.Connection[Any]]:
    schema = new_schema_name()
    with eventkeep.open_store(with_schema(pg_server.url, schema)) as store:
        for start in range(0, EVENTS, 2000):
            store.append_events(
                [
                    NewEvent(
                        RawEvent("Enrolled" if n % 4 else "Opened", {"n": n}),
                        tags=[f"student:{n % 2000}", f"course:{n % 50}"],
                    )
                    for n in range(start, start + 2000)
                ]
            )
    db = psycopg.connect(pg_server.url, autocommit=True)
    db.execute(f'SET search_path TO "{schema}"')
    db.execute("ANALYZE")
    yield db
    db.close()
    pg_server.drop_schema(schema)


def plan(conn: psycopg.Connection[Any], statement: str, params: list[Any]) -> str:
    return "\n".join(str(row[0]) for row in conn.execute(f"EXPLAIN {statement}", params))


@pytest.mark.parametrize("name", QUERIES)
def test_an_append_condition_is_an_index_probe_per_item(
    conn: psycopg.Connection[Any], name: str
) -> None:
    text = plan(conn, *dcb.first_match(QUERIES[name], EVENTS - 100))
    assert "Seq Scan" not in text, text
    # Each tag walk starts at the condition's position: it visits the matches after it only.
    conditions = [line for line in text.splitlines() if "Index Cond: ((tag = " in line]
    for line in conditions:
        assert '"position" > ' in line or '"position" = ' in line, text
    if QUERIES[name].items[0].tags:
        assert "on event_tags t0" in text, text
        assert "Index Cond: ((tag = " in text, text


@pytest.mark.parametrize("name", QUERIES)
def test_a_query_read_walks_indexes_from_its_position(
    conn: psycopg.Connection[Any], name: str
) -> None:
    text = plan(conn, *dcb.read_page(QUERIES[name], 100, 50))
    assert "Seq Scan" not in text, text
    assert "Index Scan using events_position on events" in text, text
    if QUERIES[name].items[0].tags:
        assert "event_tags_pkey" in text, text
