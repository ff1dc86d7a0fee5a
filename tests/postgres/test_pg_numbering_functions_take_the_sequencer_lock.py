"""Every numbering function takes the one sequencer lock: the key computed by migration 0014's
functions (a catalog lookup of the schema) is the key eventkeep_sequencer_lock() and the
store's other paths take (a query of pg_namespace). While another session holds that lock, each
function waits for it; and the functions still refuse what they refused before 0014 (a match,
a moved head, a clock behind the log's last event), writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pg_harness import SEQUENCER_LOCK_KEY, raw_connection

from eventkeep import RawEvent
from pg_fixtures import Target

CALLS = {
    "append_position": "SELECT eventkeep_append_position()",
    "not_before": "SELECT eventkeep_append_position_not_before(now())",
    "unmatched": "SELECT eventkeep_append_position_unmatched(%s, NULL, now())",
}


@pytest.fixture
def sessions(target: Target, pg_store: Any) -> Iterator[tuple[Any, psycopg.Connection[Any]]]:
    pg_store.append("setup", [RawEvent("Noted", {}), RawEvent("Noted", {})])
    conn = raw_connection(target.base_url, target.schema)
    yield pg_store, conn
    conn.close()


def head(store: Any) -> int:
    return int(store.head_position())


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_numbering_function_waits_while_another_session_holds_the_sequencer_lock(
    sessions: tuple[Any, psycopg.Connection[Any]], target: Target, name: str
) -> None:
    store, holder = sessions
    key = holder.execute(SEQUENCER_LOCK_KEY, (target.schema,)).fetchone()
    assert key is not None
    holder.execute("BEGIN")
    holder.execute("SELECT eventkeep_sequencer_lock()")
    with raw_connection(target.base_url, target.schema) as caller:
        caller.execute("SET lock_timeout = '200ms'")
        params = (head(store),) if name == "unmatched" else ()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            caller.execute(CALLS[name], params)
        holder.execute("COMMIT")
        # The key it waited for is the key taken by the query of pg_namespace.
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", key)
        with pytest.raises(psycopg.errors.LockNotAvailable):
            caller.execute(CALLS[name], params)
        holder.execute("COMMIT")
        row = caller.execute(CALLS[name], params).fetchone()
    assert row == (head(store),)


def test_the_one_round_trip_functions_still_refuse_a_match_a_moved_head_and_a_late_clock(
    sessions: tuple[Any, psycopg.Connection[Any]],
) -> None:
    store, conn = sessions
    now = head(store)
    with pytest.raises(psycopg.Error) as matched:
        conn.execute("SELECT eventkeep_append_position_unmatched(%s, 1, now())", (now,))
    assert matched.value.sqlstate == "EKC03"
    with pytest.raises(psycopg.Error) as moved:
        conn.execute("SELECT eventkeep_append_position_unmatched(%s, NULL, now())", (now - 1,))
    assert moved.value.sqlstate == "EKC01"
    for statement, params in (
        ("SELECT eventkeep_append_position_unmatched(%s, NULL, now() - interval '1 hour')", (now,)),
        ("SELECT eventkeep_append_position_not_before(now() - interval '1 hour')", ()),
    ):
        with pytest.raises(psycopg.Error) as late:
            conn.execute(statement, params)
        assert late.value.sqlstate == "EKC02"
    assert head(store) == now
