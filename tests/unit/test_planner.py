"""The append planner decides every backend's appends: conflicts, replays and rows to write."""

from __future__ import annotations

import pytest

from eventkeep import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ConcurrencyError,
    DuplicateEventIdError,
    NewEvent,
    RawEvent,
    StreamAppend,
)
from eventkeep.backends.memory import MemoryStore
from eventkeep.store import AppendResult, PreparedAppend, StoredIdentity
from eventkeep.store.hashing import GENESIS, chain_events
from eventkeep.store.planner import NEW_STREAM, Head, PlannedWrite, new_heads, plan_append


def prepare(*appends: StreamAppend) -> list[PreparedAppend]:
    return MemoryStore()._prepare_many(appends)


def events(count: int, tag: str = "e") -> list[RawEvent]:
    return [RawEvent("unit.Happened", {"tag": tag, "n": n}) for n in range(count)]


def identities(
    batch: PreparedAppend, first_version: int, first_position: int
) -> dict[bytes, StoredIdentity]:
    return {
        ev.event_id: StoredIdentity(
            ev.event_id, batch.stream_id, first_version + i, first_position + i, ev.type, ev.data
        )
        for i, ev in enumerate(batch.events)
    }


def test_a_new_stream_is_written_from_version_1_chained_to_genesis() -> None:
    [batch] = prepare(StreamAppend("s", events(3), NO_STREAM))
    plan = plan_append([batch], {}, None)
    assert (plan.conflict, plan.needs_ids) == (None, False)
    assert plan.writes == [PlannedWrite(batch, NEW_STREAM)]
    rows = plan.rows(1_000)
    assert [r.version for r in rows] == [1, 2, 3]
    assert [r.hash for r in rows] == chain_events(GENESIS, "s", 0, batch.events, 1_000)
    assert {r.recorded_at_us for r in rows} == {1_000}
    assert plan.results(7) == [AppendResult("s", (1, 2, 3), (7, 8, 9))]


def test_rows_continue_the_stored_head_and_its_hash() -> None:
    [batch] = prepare(StreamAppend("s", events(2), 4))
    head = Head(4, b"\x01" * 32, 500)
    plan = plan_append([batch], {"s": head}, None)
    rows = plan.rows(900)
    assert [r.version for r in rows] == [5, 6]
    assert [r.hash for r in rows] == chain_events(b"\x01" * 32, "s", 4, batch.events, 900)
    assert plan.time_floor() == 500


@pytest.mark.parametrize(
    ("expected", "actual"), [(0, 3), (NO_STREAM, 3), (STREAM_EXISTS, 0), (2, 3), (4, 3)]
)
def test_a_mismatch_asks_for_the_event_ids_first_then_is_a_conflict(
    expected: object, actual: int
) -> None:
    [batch] = prepare(StreamAppend("s", events(1), expected))  # type: ignore[arg-type]
    heads = {"s": Head(actual, GENESIS)} if actual else {}
    first = plan_append([batch], heads, None)
    assert first.needs_ids
    assert first.conflict is None
    second = plan_append([batch], heads, {})
    assert not second.needs_ids
    assert isinstance(second.conflict, ConcurrencyError)
    assert (second.conflict.expected, second.conflict.actual) == (expected, actual)


def test_any_never_conflicts() -> None:
    [batch] = prepare(StreamAppend("s", events(1), ANY))
    plan = plan_append([batch], {"s": Head(9, GENESIS)}, {})
    assert plan.conflict is None
    assert plan.results(100) == [AppendResult("s", (10,), (100,))]


def test_a_retried_append_is_a_replay_of_the_original_result() -> None:
    [batch] = prepare(StreamAppend("s", events(2), 0))
    stored = identities(batch, first_version=1, first_position=40)
    plan = plan_append([batch], {"s": Head(2, GENESIS)}, stored)
    assert plan.writes == []
    assert plan.results(999) == [AppendResult("s", (1, 2), (40, 41))]


def test_a_replay_beside_a_write_numbers_only_the_write() -> None:
    one, two, three = prepare(
        StreamAppend("a", events(1, "a"), ANY),
        StreamAppend("b", events(2, "b"), 0),
        StreamAppend("c", events(2, "c"), ANY),
    )
    stored = identities(two, first_version=1, first_position=5)
    plan = plan_append([one, two, three], {"b": Head(2, GENESIS)}, stored)
    assert [step.batch.stream_id for step in plan.writes] == ["a", "c"]
    assert [r.stream_id for r in plan.rows(1)] == ["a", "c", "c"]
    assert plan.results(20) == [
        AppendResult("a", (1,), (20,)),
        AppendResult("b", (1, 2), (5, 6)),
        AppendResult("c", (1, 2), (21, 22)),
    ]


def test_ids_stored_for_other_events_are_refused_not_replayed() -> None:
    [batch] = prepare(StreamAppend("s", events(2), ANY))
    stored = identities(batch, 1, 1)
    first_id = batch.events[0].event_id
    stored[first_id] = stored[first_id]._replace(data=b'{"other":1}')
    with pytest.raises(DuplicateEventIdError, match="different event"):
        plan_append([batch], {"s": Head(2, GENESIS)}, stored)


def test_some_ids_stored_and_some_new_is_neither_a_retry_nor_a_new_append() -> None:
    [batch] = prepare(StreamAppend("s", events(2), ANY))
    stored = identities(batch, 1, 1)
    del stored[batch.events[1].event_id]
    with pytest.raises(DuplicateEventIdError, match="neither a retry"):
        plan_append([batch], {"s": Head(1, GENESIS)}, stored)


def test_the_planner_is_pure_the_same_input_gives_the_same_plan() -> None:
    [batch] = prepare(StreamAppend("s", [NewEvent(RawEvent("unit.X", {}))], ANY))
    heads = {"s": Head(1, b"\x02" * 32, 10)}
    assert plan_append([batch], heads, None) == plan_append([batch], heads, None)
    assert plan_append([batch], heads, None).rows(50) == plan_append([batch], heads, {}).rows(50)


def test_new_heads_are_each_written_streams_last_row_with_its_offset() -> None:
    one, two = prepare(StreamAppend("a", events(2, "a"), ANY), StreamAppend("b", events(1, "b")))
    rows = plan_append([one, two], {"a": Head(3, GENESIS)}, None).rows(10)
    assert [(offset, row.stream_id, row.version) for offset, row in new_heads(rows)] == [
        (1, "a", 5),
        (2, "b", 1),
    ]
    assert new_heads(rows)[0][1].hash == rows[1].hash
