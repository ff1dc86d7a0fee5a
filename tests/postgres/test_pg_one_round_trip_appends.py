"""A PostgreSQL store appends to a stream it appended to before, or read to its end (or to a
new one), in one round trip: the heads are known from its earlier appends and reads (on the
primary, outside a store transaction), the server's clock from its appends. When what it knew
is wrong (another writer appended to the stream, the log's last event is later than the time
it chose, the append is a retry of one stored), nothing is written by that round trip and the
append is made the usual way, with the outcome it would have had anyway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import eventkeep
from eventkeep import ANY, NO_STREAM, ConcurrencyError, RawEvent
from eventkeep.backends.postgres import sql
from eventkeep.store.events import NewEvent
from pg_fixtures import PgServer, fresh_store_url


@pytest.fixture
def stores(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    url = fresh_store_url(request, pg_server)
    with eventkeep.open_store(url) as store, eventkeep.open_store(url) as other:
        yield store, other


def one(n: int) -> list[RawEvent]:
    return [RawEvent("Noted", {"n": n})]


def append_after(store: Any, expected: Any, stored: int) -> None:
    """Append to ``s-1``, whose stored head is version ``stored``, expecting ``expected``: any
    version writes the next one; another expected version conflicts, naming the stored one."""
    if expected is ANY:
        assert store.append("s-1", one(0)).versions == (stored + 1,)
    else:
        with pytest.raises(ConcurrencyError) as caught:
            store.append("s-1", one(0), expected_version=expected)
        assert caught.value.actual == stored


def test_an_append_after_its_own_is_one_round_trip(stores: Any, trips: list[str]) -> None:
    store, _ = stores
    store.append("s-1", one(1), expected_version=NO_STREAM)  # reads first: learns the clock
    assert len(trips) == 2
    trips.clear()
    store.append("s-1", one(2), expected_version=1)
    store.append("s-2", one(3), expected_version=NO_STREAM)  # new: no head to know
    store.append("s-3", one(4), expected_version=0)  # the same, said as version 0
    assert len(trips) == 3
    assert all("eventkeep_append_position_not_before" in statement for statement in trips)
    events = list(store.read_all())
    assert [e.data["n"] for e in events] == [1, 2, 3, 4]
    times = [e.recorded_at for e in events]
    assert times == sorted(times)
    assert store.verify().ok


def test_a_head_another_writer_moved_is_refused_then_read(stores: Any, trips: list[str]) -> None:
    store, other = stores
    store.append("s-1", one(1))
    store.append("s-1", one(2), expected_version=1)
    other.append("s-1", one(3), expected_version=2)  # store still knows version 2
    trips.clear()
    with pytest.raises(ConcurrencyError):
        store.append("s-1", one(4), expected_version=2)
    assert "not_before" in trips[0]  # sent at once, refused by the primary key
    assert len(trips) >= 2  # then read: the conflict decided on the stored head
    store.append("s-1", one(4), expected_version=3)
    assert [e.data["n"] for e in store.read_stream("s-1")] == [1, 2, 3, 4]
    assert store.verify().ok


def test_a_time_before_the_logs_last_event_is_refused_then_read(stores: Any) -> None:
    store, other = stores
    store.append("s-1", one(1))
    store._known._offset_us -= 60_000_000  # its clock estimate a minute behind the server's
    other.append("s-2", one(2))
    result = store.append("s-1", one(3), expected_version=1)
    events = list(store.read_all())
    assert [e.data["n"] for e in events] == [1, 2, 3]
    assert events[-1].position == result.positions[0]
    assert events[-1].recorded_at >= events[-2].recorded_at  # never back along the log
    assert store.verify().ok


@pytest.mark.parametrize("expected", [1, ANY])
def test_a_retry_sent_in_one_round_trip_returns_the_stored_result(
    stores: Any, expected: Any, trips: list[str]
) -> None:
    store, _ = stores
    store.append("s-1", one(0))
    event = NewEvent(RawEvent("Noted", {"n": 1}), event_id=uuid.uuid4())
    first = store.append("s-1", [event], expected_version=expected)
    trips.clear()
    again = store.append("s-1", [event], expected_version=expected)  # the same event id
    assert again == first
    assert [e.data["n"] for e in store.read_stream("s-1")] == [0, 1]
    if expected is ANY:  # sent at once (version 3 per the known head): the id index refused
        assert "not_before" in trips[0]


def test_refusals_in_a_row_make_the_store_read_first_for_a_while(
    stores: Any, trips: list[str]
) -> None:
    store, other = stores
    store.append("hot", one(0))
    for n in range(1, 4):  # the other writer moves the head before each of this store's
        other.append("hot", one(n), expected_version=2 * n - 1)
        store.append("hot", one(n), expected_version=2 * n)
    trips.clear()
    other.append("hot", one(99), expected_version=7)
    store.append("hot", one(100), expected_version=8)
    assert not any(sql.CLOCK_BEHIND in s or "not_before" in s for s in trips[:1])
    assert store.verify().ok


def test_an_append_after_reading_the_stream_to_its_end_is_one_round_trip(
    stores: Any, trips: list[str]
) -> None:
    store, other = stores
    store.append("setup", one(0))  # reads first: learns the clock
    other.append("s-1", one(1) + one(2))
    other.append("s-2", one(3))
    assert [e.version for e in store.read_stream("s-1")] == [1, 2]  # forwards, to the end
    assert [e.version for e in store.read_stream("s-2", backwards=True, limit=1)] == [1]
    trips.clear()
    store.append("s-1", one(4), expected_version=2)
    store.append("s-2", one(5), expected_version=1)
    assert len(trips) == 2
    assert all("not_before" in statement for statement in trips)
    assert store.verify().ok


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s: s.read_stream("s-1", to_version=2), id="up-to-a-version"),
        pytest.param(lambda s: s.read_stream("s-1", limit=2), id="a-full-page-forwards"),
        pytest.param(lambda s: s.read_stream("s-1", from_version=4), id="past-the-end"),
    ],
)
def test_a_read_that_may_stop_before_the_streams_end_teaches_nothing(
    stores: Any, trips: list[str], read: Any
) -> None:
    store, other = stores
    store.append("setup", one(0))
    other.append("s-1", one(1) + one(2) + one(3))
    list(read(store))
    trips.clear()
    store.append("s-1", one(4), expected_version=3)
    assert len(trips) == 2  # the head read, then the insert
    assert [e.version for e in store.read_stream("s-1")] == [1, 2, 3, 4]


def test_a_read_inside_a_store_transaction_teaches_nothing(stores: Any, trips: list[str]) -> None:
    store, other = stores
    store.append("setup", one(0))
    other.append("s-1", one(1))
    seen: list[int] = []

    def read_then_roll_back() -> None:
        with store.transaction() as tx:
            tx.append("s-1", one(2), expected_version=1)
            seen.extend(e.version for e in store.read_stream("s-1"))
            raise RuntimeError("rolled back: version 2 never existed")

    with pytest.raises(RuntimeError):
        read_then_roll_back()
    assert seen == [1, 2]
    trips.clear()
    # Any version: a head learned from the rolled-back read would write version 3, after a
    # version 2 that never existed (the primary key has nothing to refuse).
    assert store.append("s-1", one(3)).versions == (2,)
    assert len(trips) == 2
    assert [(e.version, e.data["n"]) for e in store.read_stream("s-1")] == [(1, 1), (2, 3)]
    assert store.verify().ok


@pytest.mark.parametrize("expected", [2, ANY])
def test_a_head_read_before_another_writer_appended_is_refused_then_read(
    stores: Any, trips: list[str], expected: Any
) -> None:
    store, other = stores
    store.append("setup", one(0))
    other.append("s-1", one(1) + one(2))
    assert len(list(store.read_stream("s-1"))) == 2
    other.append("s-1", one(3), expected_version=2)  # store read version 2
    trips.clear()
    append_after(store, expected, stored=3)
    assert "not_before" in trips[0]  # sent at once, refused by the primary key
    assert len(trips) >= 2
    assert store.verify().ok


def test_a_read_older_than_the_stores_own_append_does_not_move_the_head_back(
    stores: Any, trips: list[str]
) -> None:
    store, _ = stores
    store.append("s-1", one(1) + one(2))
    store._known.saw("s-1", store._known._heads["s-1"]._replace(version=1))
    trips.clear()
    store.append("s-1", one(3), expected_version=2)
    assert len(trips) == 1


@pytest.mark.parametrize("expected", [3, ANY])
def test_a_head_known_ahead_of_its_stream_is_refused_and_leaves_no_gap(
    stores: Any, trips: list[str], expected: Any
) -> None:
    # A head learned from a commit that a server crash then lost (group commit's commits are
    # asynchronous until flushed) is ahead of its stream: the primary key has nothing against
    # the version after it. The numbering function refuses it (migration 0019).
    store, _ = stores
    store.append("s-1", one(1) + one(2))
    known = store._known._heads["s-1"]
    store._known.saw("s-1", known._replace(version=3))  # as if version 3 had been read
    trips.clear()
    append_after(store, expected, stored=2)
    assert "not_before" in trips[0]  # sent at once, refused: version 4 would follow nothing
    assert [e.version for e in store.read_stream("s-1")] == [1, 2, 3][: 3 if expected is ANY else 2]
    assert store.verify().ok


def test_a_conditional_append_on_a_head_known_ahead_leaves_no_gap(
    stores: Any, trips: list[str]
) -> None:
    from eventkeep import AppendCondition, Query, QueryItem

    store, _ = stores
    store.append("s-1", one(1))
    store._known.saw("s-1", store._known._heads["s-1"]._replace(version=5))
    condition = AppendCondition(Query([QueryItem(types=["Never"])]), store.head_position())
    trips.clear()
    result = store.append_many([eventkeep.StreamAppend("s-1", one(2))], condition=condition)
    assert "unmatched" in trips[0]  # sent at once, refused
    assert result[0].versions == (2,)
    assert [e.version for e in store.read_stream("s-1")] == [1, 2]
    assert store.verify().ok
