"""Query reads and append conditions (DCB) are served by indexes on SQLite: the plans say so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import eventkeep
from eventkeep import NewEvent, Query, QueryItem, RawEvent
from eventkeep.backends.sqlite import dcb

QUERIES = {
    "one tag": Query([QueryItem(tags=["student:7"])]),
    "type and two tags": Query([QueryItem(types=["Enrolled"], tags=["student:7", "course:3"])]),
    "types only": Query([QueryItem(types=["Enrolled", "Opened"])]),
    "two items": Query(
        [QueryItem(types=["Opened"], tags=["course:3"]), QueryItem(tags=["student:7"])]
    ),
}


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = Path(tmp_path_factory.mktemp("plans")) / "plans.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        store.append_events(
            [
                NewEvent(
                    RawEvent("Enrolled" if n % 4 else "Opened", {"n": n}),
                    tags=[f"student:{n % 300}", f"course:{n % 20}"],
                )
                for n in range(3000)
            ]
        )
    db = sqlite3.connect(path)
    db.execute("ANALYZE")
    return db


def plan(conn: sqlite3.Connection, statement: str, params: list[object]) -> str:
    return "\n".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params))


def assert_indexed(text: str) -> None:
    lines = text.splitlines()
    # No walk over a whole table: every access of events or event_tags is a SEARCH by key.
    assert not [line for line in lines if line.startswith("SCAN") and " events" in line], text
    assert not [line for line in lines if line.startswith("SCAN t")], text
    walks = [line for line in lines if line.startswith("SEARCH")]
    assert walks, text
    for line in walks:
        if "event_tags" in line or line.startswith("SEARCH t"):
            assert "PRIMARY KEY (tag=?" in line, text
        elif "events" in line and "rowid=?" not in line and "position=?" not in line:
            assert "events_by_type (type=? AND position>?)" in line, text


@pytest.mark.parametrize("name", QUERIES)
def test_an_append_condition_is_an_index_probe_per_item(
    conn: sqlite3.Connection, name: str
) -> None:
    text = plan(conn, *dcb.first_match(QUERIES[name], 2000))
    assert_indexed(text)
    if QUERIES[name].items[0].tags:
        assert "SEARCH t0 USING PRIMARY KEY (tag=? AND position>?)" in text


@pytest.mark.parametrize("name", QUERIES)
def test_a_query_read_walks_indexes_from_its_position(conn: sqlite3.Connection, name: str) -> None:
    text = plan(conn, *dcb.read_page(QUERIES[name], 100, 50))
    assert_indexed(text)
    assert "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)" in text
