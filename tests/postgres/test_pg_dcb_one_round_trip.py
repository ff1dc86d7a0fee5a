"""A PostgreSQL store that knows the server's clock sends a conditional append in one round
trip: the insert statement checks the condition itself (migration 0013). When the check finds
an event, or an append commits between the statement's snapshot and its taking the sequencer's
lock, nothing is written by that round trip and the append is decided under the lock, with the
outcome it would have had anyway: a failed condition, a re-send's original result, or the
append after the one that got in first. The database is real; the interleaving is made by
another store holding the sequencer's lock in an open transaction."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

import eventkeep
from eventkeep import AppendCondition, AppendConditionError, NewEvent, Query, QueryItem, RawEvent
from eventkeep.backends.postgres import plans
from pg_fixtures import PgServer, fresh_store_url

QUERY = Query(
    [
        QueryItem(types=["Claimed", "Released"], tags=["username:ann"]),
        QueryItem(types=["Registered"], tags=["user:ann"]),
    ]
)


def claim(tag: str = "username:ann") -> NewEvent:
    return NewEvent(RawEvent("Claimed", {}), uuid.uuid4(), tags=[tag])


@pytest.fixture
def stores(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    url = fresh_store_url(request, pg_server)
    with eventkeep.open_store(url) as store, eventkeep.open_store(url) as other:
        store.append("setup", [RawEvent("Noted", {})])  # reads first: learns the clock
        yield store, other


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the appends decided under the lock after the one round trip was refused."""
    calls: list[int] = []
    original = plans._append_checked_locked

    def checked_locked(*args: Any) -> Any:
        calls.append(1)
        return (yield from original(*args))

    monkeypatch.setattr(plans, "_append_checked_locked", checked_locked)
    return calls


def test_a_conditional_append_is_one_round_trip(stores: Any, trips: list[str]) -> None:
    store, _ = stores
    head = store.head_position()
    trips.clear()
    first = store.append_events([claim()], condition=AppendCondition(QUERY, head))
    second = store.append_events(
        [NewEvent(RawEvent("Registered", {}), tags=["user:bob"])],
        condition=AppendCondition(QUERY, first.positions[0]),
    )
    assert len(trips) == 2
    assert all("eventkeep_append_position_unmatched" in statement for statement in trips)
    assert (first.positions, second.positions) == ((2,), (3,))
    assert [e.type for e in store.read(QUERY)] == ["Claimed"]
    assert store.verify().ok


def test_a_match_found_by_the_statement_fails_the_condition_and_writes_nothing(
    stores: Any, trips: list[str], locked: list[int]
) -> None:
    store, other = stores
    other.append_events([claim()])
    trips.clear()
    with pytest.raises(AppendConditionError) as caught:
        store.append_events([claim()], condition=AppendCondition(QUERY, 1))
    assert "unmatched" in trips[0]  # sent at once, refused by the statement (EKC03)
    assert locked == [1]  # then decided under the lock
    assert caught.value.position == 2
    assert store.head_position() == 2
    assert store.verify().ok


def test_a_resent_conditional_append_returns_its_original_result(
    stores: Any, trips: list[str], locked: list[int]
) -> None:
    store, other = stores
    event = claim()
    condition = AppendCondition(QUERY, store.head_position())
    original = other.append_events([event], condition=condition)  # sent by another writer
    trips.clear()
    # Its own event now matches the condition: the statement refuses it (EKC03), and the
    # append under the lock finds the event ids stored.
    assert store.append_events([event], condition=condition) == original
    assert "unmatched" in trips[0]
    assert len(trips) >= 2
    assert locked == [1]
    # A re-send whose events do not match its condition: refused by the stream's key instead.
    unrelated = claim("username:zoe")
    later = AppendCondition(QUERY, 2)
    first = other.append_events([unrelated], condition=later)
    trips.clear()
    assert store.append_events([unrelated], condition=later) == first
    assert "unmatched" in trips[0]
    assert len(trips) >= 2
    assert store.head_position() == first.positions[0] == 3
    assert store.verify().ok


def blocked_on_the_sequencer(url: str, timeout: float = 20.0) -> None:
    """Wait until some session of the database waits for an advisory lock (the sequencer)."""
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.01)
    raise AssertionError("no append waited for the sequencer's lock")


def append_while_another_commits(
    stores: Any, pg_server: PgServer, other_event: NewEvent, act: Callable[[], Any]
) -> dict[str, Any]:
    """Start ``act()`` in a thread while ``other`` holds the sequencer's lock with
    ``other_event`` appended and not committed; commit it once ``act`` waits for the lock."""
    _, other = stores
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = act()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    with other.transaction() as tx:
        tx.append_events([other_event])  # takes the sequencer's lock until the commit
        thread.start()
        blocked_on_the_sequencer(pg_server.url)
    thread.join(30)
    assert not thread.is_alive()
    return outcome


def test_an_unrelated_commit_before_the_lock_moves_the_head_and_the_append_goes_through(
    stores: Any, pg_server: PgServer, trips: list[str], locked: list[int]
) -> None:
    store, _ = stores
    condition = AppendCondition(QUERY, store.head_position())
    trips.clear()
    outcome = append_while_another_commits(
        stores,
        pg_server,
        claim("username:zoe"),
        lambda: store.append_events([claim()], condition=condition),
    )
    assert "error" not in outcome, outcome
    # (trips holds the other store's transaction too)
    assert sum("unmatched" in t for t in trips) == 1  # sent at once, refused (EKC01)
    assert locked == [1]  # then checked again under the lock: still no match
    assert outcome["result"].positions == (3,)  # after the one committed in between
    assert [e.tags for e in store.read(QUERY)] == [("username:ann",)]
    assert store.verify().ok


def test_a_matching_commit_before_the_lock_fails_the_condition_and_nothing_is_written(
    stores: Any, pg_server: PgServer, trips: list[str], locked: list[int]
) -> None:
    store, _ = stores
    condition = AppendCondition(QUERY, store.head_position())
    trips.clear()
    outcome = append_while_another_commits(
        stores, pg_server, claim(), lambda: store.append_events([claim()], condition=condition)
    )
    assert isinstance(outcome.get("error"), AppendConditionError), outcome
    assert outcome["error"].position == 2
    assert sum("unmatched" in t for t in trips) == 1
    assert locked == [1]
    assert store.head_position() == 2
    assert store.verify().ok


def test_appends_of_several_events_and_streams_are_one_round_trip_too(
    stores: Any, trips: list[str]
) -> None:
    store, _ = stores
    head = store.head_position()
    trips.clear()
    results = store.append_many(
        [
            eventkeep.StreamAppend("s-1", [claim("username:zoe"), claim("username:max")], 0),
            eventkeep.StreamAppend("s-2", [RawEvent("Noted", {}), RawEvent("Noted", {})], 0),
        ],
        condition=AppendCondition(QUERY, head),
    )
    untagged = store.append(
        "s-3",
        [RawEvent("Noted", {}), RawEvent("Noted", {})],
        expected_version=0,  # a new stream: no head to know
        condition=AppendCondition(QUERY),
    )
    assert len(trips) == 2
    assert all("eventkeep_append_position_unmatched" in statement for statement in trips)
    assert [r.positions for r in results] == [(2, 3), (4, 5)]
    assert untagged.positions == (6, 7)
    assert [e.tags for e in store.read(Query([QueryItem(tags=["username:max"])]))] == [
        ("username:max",)
    ]
    zoe = Query([QueryItem(tags=["username:zoe"])])
    with pytest.raises(AppendConditionError) as caught:
        store.append("s-1", [claim()], expected_version=2, condition=AppendCondition(zoe, 0))
    assert caught.value.position == 2
    store.append("s-1", [claim()], expected_version=2, condition=AppendCondition(zoe, 2))
    assert store.verify().ok
