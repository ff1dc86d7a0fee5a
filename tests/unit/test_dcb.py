"""DCB pieces without a store: the planner's condition rule, tags in the hash chain, tag
templates on event classes, and query matching."""

from __future__ import annotations

import pytest

from eventkeep import (
    AppendCondition,
    AppendConditionError,
    ConfigurationError,
    Event,
    NewEvent,
    Query,
    QueryItem,
    RawEvent,
    StreamAppend,
)
from eventkeep.backends.memory import MemoryStore
from eventkeep.store import PreparedAppend, StoredIdentity
from eventkeep.store.hashing import GENESIS, ChainRow, chain_events, chain_hash, verify_chains
from eventkeep.store.planner import plan_append


def prepare(*appends: StreamAppend) -> list[PreparedAppend]:
    return MemoryStore()._prepare_many(appends)


CONDITION = AppendCondition(Query([QueryItem(tags=["t"])]), 3)


def test_without_a_match_the_condition_lets_the_append_through() -> None:
    batches = prepare(StreamAppend("s", [RawEvent("A", {})]))
    plan = plan_append(batches, {}, None, CONDITION, None)
    assert plan.conflict is None
    assert not plan.needs_ids


def test_a_match_asks_for_the_event_ids_first_then_is_a_condition_error() -> None:
    batches = prepare(StreamAppend("s", [RawEvent("A", {})]))
    first = plan_append(batches, {}, None, CONDITION, 5)
    assert first.needs_ids
    second = plan_append(batches, {}, {}, CONDITION, 5)
    assert isinstance(second.conflict, AppendConditionError)
    assert (second.conflict.after, second.conflict.position) == (3, 5)


def test_a_replayed_append_is_not_failed_by_its_own_events() -> None:
    [batch] = prepare(StreamAppend("s", [RawEvent("A", {})], 0))
    ev = batch.events[0]
    stored = {ev.event_id: StoredIdentity(ev.event_id, "s", 1, 4, ev.type, ev.data)}
    plan = plan_append([batch], {"s": (1, GENESIS, 0)}, stored, CONDITION, 4)  # type: ignore[dict-item]
    assert plan.conflict is None
    assert plan.writes == []


def test_tags_are_hashed_and_untagged_events_hash_as_before() -> None:
    [batch] = prepare(
        StreamAppend("s", [RawEvent("A", {}), NewEvent(RawEvent("A", {}), tags=["b", "a"])])
    )
    plain, tagged = batch.events
    assert plain.tags == ()
    assert tagged.tags == ("a", "b")
    hashes = chain_events(GENESIS, "s", 0, batch.events, 7)
    old_form = chain_hash(GENESIS, "s", 1, plain.event_id, "A", 1, 7, plain.data, plain.metadata)
    assert hashes[0] == old_form
    args = (hashes[0], "s", 2, tagged.event_id, "A", 1, 7, tagged.data, tagged.metadata)
    assert hashes[1] == chain_hash(*args, tagged.tags)
    assert hashes[1] != chain_hash(*args)
    rows = [
        ChainRow("s", n, n, ev.event_id, "A", 1, 7, ev.data, ev.metadata, digest, ev.tags)
        for n, (ev, digest) in enumerate(zip(batch.events, hashes, strict=True), 1)
    ]
    assert verify_chains(rows, {"s": 2}).ok
    tampered = [*rows[:1], rows[1]._replace(tags=("a",))]
    assert not verify_chains(tampered, {"s": 2}).ok


def test_tag_templates_must_name_fields() -> None:
    with pytest.raises(ConfigurationError):

        class Bad(Event):
            __event_type__ = "unit.BadTags"
            __tags__ = ("user:{nobody}",)
            user: str

    with pytest.raises(ConfigurationError):

        class NotATuple(Event):
            __event_type__ = "unit.NotATuple"
            __tags__ = "user:{user}"  # type: ignore[assignment]
            user: str


def test_queries_compare_by_their_items_and_match_in_python() -> None:
    a = Query([QueryItem(types=["A"], tags=["y", "x"]), QueryItem(tags=["z"])])
    b = Query([QueryItem(tags=["z"]), QueryItem(types=["A"], tags=["x", "y"])])
    assert a == b
    assert hash(a) == hash(b)
    assert a.matches("A", ["x", "y", "q"])
    assert not a.matches("B", ["x", "y"])
    assert a.matches("B", ["z"])
    assert Query.all().matches("anything", [])
    assert Query.all().matches_all
