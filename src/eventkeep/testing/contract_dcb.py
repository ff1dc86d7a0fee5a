"""Dynamic Consistency Boundaries (:mod:`eventkeep.store.dcb`) mean one thing on every backend.

- Tags come from ``NewEvent(tags=...)`` and an event class's ``__tags__``; they are stored
  sorted and without repeats, read back on every read, and covered by the hash chain.
- A query item matches an event of one of its types (any type when it names none) carrying all
  of its tags; a query matches when any item does; ``Query.all()`` matches every event.
- ``store.read(query, after=, limit=)`` returns the matches in log order and the head to use as
  a condition's ``after``.
- A condition fails an append (``AppendConditionError``, nothing written) when an event
  matching its query was appended after its position; an expected version is enforced beside
  it; a re-sent append returns its original result; in a transaction it sees the
  transaction's own appends, and a failure undoes that call only.
- Bad tags, queries and conditions are refused with ``ValidationError`` before anything is
  stored.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from eventkeep.errors import AppendConditionError, ConcurrencyError, ValidationError
from eventkeep.store import EventStore, StreamAppend
from eventkeep.store.dcb import STREAMLESS_PREFIX, AppendCondition, Query, QueryItem
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.testing.base import ContractBase, assert_unchanged, deposits, state
from eventkeep.testing.events import CourseOpened, Deposited, Enrolled

__all__ = ["DcbContract"]


def tagged(type_name: str, *tags: str, **data: Any) -> NewEvent:
    return NewEvent(RawEvent(type_name, data), tags=list(tags))


def items(tags: list[str] | None = None, types: list[Any] | None = None) -> Query:
    return Query([QueryItem(types=types or (), tags=tags or ())])


def found(store: EventStore, query: Query, **options: Any) -> list[int]:
    return [e.position for e in store.read(query, **options)]


class DcbContract(ContractBase):
    # -- tags ----------------------------------------------------------------------------------

    def test_tags_come_from_new_event_and_class_templates_sorted_without_repeats(
        self, store: EventStore
    ) -> None:
        store.append(
            "s-1",
            [
                NewEvent(Enrolled(student="ann", course="math"), tags=["term:1", "course:math"]),
                tagged("contract.Note", "b", "a", "b"),
                Deposited(amount=1),  # type: ignore[arg-type]
            ],
        )
        tags = [e.tags for e in store.read_stream("s-1")]
        assert tags == [("course:math", "student:ann", "term:1"), ("a", "b"), ()]
        assert [e.tags for e in store.read_all()] == tags
        assert [e.tags for e in store.read(Query.all())] == tags
        assert store.verify().ok

    def test_an_untagged_store_reads_as_before(self, store: EventStore) -> None:
        store.append("plain", deposits(1, 2))
        assert [e.tags for e in store.read_stream("plain")] == [(), ()]
        assert store.read(items(tags=["x"])).events == []

    # -- matching ------------------------------------------------------------------------------

    def test_query_items_match_by_types_and_all_tags_and_queries_by_any_item(
        self, store: EventStore
    ) -> None:
        store.append(
            "s",
            [
                tagged("A", "x", "y"),  # 1
                tagged("B", "x"),  # 2
                tagged("A", "y"),  # 3
                tagged("C"),  # 4
                tagged("B", "x", "y", "z"),  # 5
            ],
        )
        assert found(store, items(tags=["x"])) == [1, 2, 5]
        assert found(store, items(tags=["x", "y"])) == [1, 5]
        assert found(store, items(tags=["y", "x"])) == [1, 5]
        assert found(store, items(types=["A"])) == [1, 3]
        assert found(store, items(types=["A", "C"])) == [1, 3, 4]
        assert found(store, items(types=["B"], tags=["y"])) == [5]
        assert found(store, items(types=["A", "B"], tags=["x"])) == [1, 2, 5]
        assert found(store, items(tags=["nothing"])) == []
        two = Query([QueryItem(types=["C"]), QueryItem(tags=["z"])])
        assert found(store, two) == [4, 5]
        overlapping = Query([QueryItem(tags=["x"]), QueryItem(tags=["y"])])
        assert found(store, overlapping) == [1, 2, 3, 5]
        assert found(store, Query.all()) == [1, 2, 3, 4, 5]
        assert found(store, Query([QueryItem(tags=["z"]), QueryItem()])) == [1, 2, 3, 4, 5]

    def test_event_classes_in_a_query_item_stand_for_their_type_names(
        self, store: EventStore
    ) -> None:
        store.append("c", [CourseOpened(course="math", capacity=2)])
        store.append("e", [Enrolled(student="ann", course="math")])
        assert found(store, items(types=[Enrolled])) == [2]
        assert found(store, items(types=[CourseOpened, Enrolled], tags=["course:math"])) == [1, 2]
        assert found(store, items(types=[Enrolled], tags=["student:bob"])) == []

    def test_read_after_and_limit_and_the_head_to_condition_on(self, store: EventStore) -> None:
        store.append("s", [tagged("A", "x"), tagged("B"), tagged("A", "x"), tagged("A", "x")])
        store.append("other", [tagged("B")])  # 5: matches nothing
        query = items(tags=["x"])
        everything = store.read(query)
        assert [e.position for e in everything] == [1, 3, 4]
        assert len(everything) == 3
        assert everything.head == 5
        assert found(store, query, after=1) == [3, 4]
        assert found(store, query, after=4) == []
        cut = store.read(query, limit=2)
        assert [e.position for e in cut] == [1, 3]
        assert cut.head == 3  # the rest of the matches is after it
        rest = store.read(query, after=cut.head, limit=2)
        assert [e.position for e in rest] == [4]
        assert rest.head == 5
        assert store.read(query, limit=0).events == []
        assert store.read(query, after=99).head == 99

    def test_reads_of_many_matches_page_through_all_of_them(self, store: EventStore) -> None:
        store.append("many", [tagged("A", "t") if n % 2 else tagged("B") for n in range(2500)])
        matches = store.read(items(tags=["t"]))
        assert len(matches) == 1250
        assert [e.position for e in matches] == list(range(2, 2501, 2))

    # -- conditions ----------------------------------------------------------------------------

    def test_a_condition_passes_when_nothing_matches_after_its_position(
        self, store: EventStore
    ) -> None:
        store.append("s", [tagged("A", "user:ann")])
        query = items(tags=["user:ann"])
        result = store.read(query)
        store.append("other", [tagged("A", "user:bob")])
        written = store.append("s", [tagged("B", "user:ann")], condition=result.condition(query))
        assert written.positions == (3,)

    def test_a_condition_fails_when_a_matching_event_came_after_its_position(
        self, store: EventStore
    ) -> None:
        query = items(types=["A"], tags=["user:ann"])
        head = store.read(query).head
        store.append("s", [tagged("A", "user:ann")])
        before = state(store)
        with pytest.raises(AppendConditionError) as caught:
            store.append("t", [tagged("B")], condition=AppendCondition(query, head))
        assert isinstance(caught.value, ConcurrencyError)
        assert caught.value.retryable
        assert caught.value.position == 1
        assert caught.value.after == 0
        assert_unchanged(store, before)

    def test_conditions_at_the_head_pass_and_one_behind_it_see_the_last_append(
        self, store: EventStore
    ) -> None:
        # Backends may skip the probe when the position is the head (nothing can follow it):
        # at the head and one behind it, the outcome is the probe's.
        query = items(tags=["seat:9"])
        head = store.append_events([tagged("Booked", "seat:9")]).positions[0]
        second = store.append_events(
            [tagged("Booked", "seat:9")], condition=AppendCondition(query, head)
        )
        assert second.positions == (head + 1,)
        before = state(store)
        with pytest.raises(AppendConditionError) as caught:
            store.append_events(
                [tagged("Booked", "seat:9")], condition=AppendCondition(query, head)
            )
        assert caught.value.position == head + 1
        assert_unchanged(store, before)
        at_head = AppendCondition(query, head + 1)
        third = store.append("s", [tagged("Booked", "seat:9")], condition=at_head)
        with pytest.raises(AppendConditionError) as caught:
            store.append_many([StreamAppend("t", [tagged("Booked", "seat:9")])], condition=at_head)
        assert caught.value.position == third.positions[0]

    def test_a_condition_without_a_position_fails_if_any_matching_event_exists(
        self, store: EventStore
    ) -> None:
        query = items(tags=["username:ann"])
        store.append_events([tagged("Claimed", "username:ann")], condition=AppendCondition(query))
        before = state(store)
        with pytest.raises(AppendConditionError):
            store.append_events(
                [tagged("Claimed", "username:ann")], condition=AppendCondition(query)
            )
        assert_unchanged(store, before)
        store.append_events(
            [tagged("Claimed", "username:bob")],
            condition=AppendCondition(items(tags=["username:bob"])),
        )

    @pytest.mark.parametrize(
        ("query", "fails"),
        [
            (items(types=["A"]), True),
            (items(types=["Z"]), False),
            (items(tags=["x"]), True),
            (items(tags=["x", "nope"]), False),
            (items(types=["B"], tags=["x"]), False),
            (Query([QueryItem(types=["Z"]), QueryItem(tags=["y"])]), True),
            (Query([QueryItem(types=["Z"]), QueryItem(tags=["nope"])]), False),
            (Query.all(), True),
        ],
        ids=[
            "types",
            "other-type",
            "tag",
            "missing-tag",
            "type-and-tag",
            "2-items",
            "2-miss",
            "all",
        ],
    )
    def test_conditions_by_types_tags_and_several_items(
        self, store: EventStore, query: Query, fails: bool
    ) -> None:
        store.append("s", [tagged("B")])
        head = store.head_position()
        store.append("s", [tagged("A", "x", "y")])
        if fails:
            with pytest.raises(AppendConditionError):
                store.append("t", [tagged("C")], condition=AppendCondition(query, head))
            assert store.stream_version("t") == 0
        else:
            store.append("t", [tagged("C")], condition=AppendCondition(query, head))
            assert store.stream_version("t") == 1
        # Matches at or before the position never fail it.
        store.append("u", [tagged("C")], condition=AppendCondition(query, store.head_position()))

    def test_a_condition_and_an_expected_version_must_both_hold(self, store: EventStore) -> None:
        store.append("s", [tagged("A", "x")])
        query = items(tags=["x"])
        ok = AppendCondition(query, 1)
        stale = AppendCondition(query, 0)
        with pytest.raises(ConcurrencyError) as version_conflict:
            store.append("s", [tagged("A", "x")], expected_version=0, condition=ok)
        assert not isinstance(version_conflict.value, AppendConditionError)
        with pytest.raises(AppendConditionError):
            store.append("s", [tagged("A", "x")], expected_version=1, condition=stale)
        assert store.stream_version("s") == 1
        store.append("s", [tagged("A", "x")], expected_version=1, condition=ok)
        assert store.stream_version("s") == 2

    def test_append_many_takes_one_condition_for_all_its_streams(self, store: EventStore) -> None:
        store.append("x", [tagged("A", "k")])
        query = items(tags=["k"])
        appends = [StreamAppend("m-1", [tagged("B", "k")]), StreamAppend("m-2", [tagged("B")])]
        with pytest.raises(AppendConditionError):
            store.append_many(appends, condition=AppendCondition(query, 0))
        assert store.stream_version("m-1") == store.stream_version("m-2") == 0
        results = store.append_many(appends, condition=AppendCondition(query, 1))
        assert [r.positions for r in results] == [(2,), (3,)]

    def test_a_resent_conditional_append_returns_its_original_result(
        self, store: EventStore
    ) -> None:
        query = items(tags=["invoice"])
        events = [NewEvent(RawEvent("Issued", {"n": 1}), uuid.uuid4(), tags=["invoice"])]
        first = store.append_events(events, condition=AppendCondition(query, 0))
        again = store.append_events(events, condition=AppendCondition(query, 0))
        assert again == first
        assert store.head_position() == 1
        in_stream = [NewEvent(RawEvent("Issued", {"n": 2}), uuid.uuid4(), tags=["invoice"])]
        one = store.append("inv", in_stream, condition=AppendCondition(query, 1))
        assert store.append("inv", in_stream, condition=AppendCondition(query, 1)) == one
        assert store.head_position() == 2
        # New events under the same stale condition are refused.
        with pytest.raises(AppendConditionError):
            store.append_events([tagged("Issued", "invoice")], condition=AppendCondition(query, 0))

    def test_append_events_writes_each_append_to_a_stream_of_its_own(
        self, store: EventStore
    ) -> None:
        ids = [uuid.uuid4(), uuid.uuid4()]
        result = store.append_events(
            [NewEvent(RawEvent("A", {}), ids[0], tags=["t"]), NewEvent(RawEvent("B", {}), ids[1])]
        )
        assert result.stream_id == f"{STREAMLESS_PREFIX}{ids[0]}"
        assert result.versions == (1, 2)
        other = store.append_events([tagged("C", "t")])
        assert other.stream_id.startswith(STREAMLESS_PREFIX)
        assert other.stream_id != result.stream_id
        assert [e.stream_id for e in store.read(items(tags=["t"]))] == [
            result.stream_id,
            other.stream_id,
        ]
        report = store.verify()
        assert report.ok
        assert report.streams_checked == 2
        # Those streams are append_events' own: nothing else appends to them.
        with pytest.raises(ValidationError, match="reserved"):
            store.append(result.stream_id, [tagged("D")])
        assert store.stream_version(result.stream_id) == 2

    # -- transactions --------------------------------------------------------------------------

    def test_in_a_transaction_reads_and_conditions_see_its_own_appends(
        self, store: EventStore
    ) -> None:
        query = items(tags=["seat:1"])
        with store.transaction() as tx:
            result = tx.read(query)
            assert result.events == []
            tx.append_events([tagged("Booked", "seat:1")], condition=result.condition(query))
            assert [e.type for e in tx.read(query)] == ["Booked"]
            with pytest.raises(AppendConditionError):
                tx.append_events([tagged("Booked", "seat:1")], condition=result.condition(query))
            with pytest.raises(AppendConditionError):
                tx.append("s", [tagged("Booked", "seat:1")], condition=result.condition(query))
        # The failed calls were undone, the transaction's first append committed.
        assert [e.type for e in store.read(query)] == ["Booked"]
        assert store.head_position() == 1

    def test_a_rolled_back_transaction_leaves_no_tags(self, store: EventStore) -> None:
        class Rollback(Exception):
            pass

        def append_then_fail() -> None:
            with store.transaction() as tx:
                tx.append("s", [tagged("A", "gone")])
                raise Rollback

        with pytest.raises(Rollback):
            append_then_fail()
        assert store.read(items(tags=["gone"])).events == []
        store.append("s", [tagged("A", "kept")])
        assert found(store, items(tags=["kept"])) == [1]
        assert found(store, items(tags=["gone"])) == []

    # -- bad input -----------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "tags",
        ["one-string", [""], [" padded"], ["tab\there"], [7], [b"bytes"], ["x" * 256], 5],
        ids=["str", "empty", "space", "control", "int", "bytes", "long", "not-a-list"],
    )
    def test_bad_tags_are_refused_and_nothing_is_stored(self, store: EventStore, tags: Any) -> None:
        store.append("s", [tagged("A", "ok")])
        before = state(store)
        with pytest.raises(ValidationError):
            store.append("s", [tagged("A"), NewEvent(RawEvent("A", {}), tags=tags)])
        with pytest.raises(ValidationError):
            store.append_events([NewEvent(RawEvent("A", {}), tags=tags)])
        assert_unchanged(store, before)

    def test_too_many_tags_are_refused(self, store: EventStore) -> None:
        with pytest.raises(ValidationError):
            store.append("s", [tagged("A", *(f"t{n}" for n in range(101)))])
        assert store.head_position() == 0

    @pytest.mark.parametrize(
        "make",
        [
            lambda: Query([]),
            lambda: Query(QueryItem()),  # type: ignore[arg-type]
            lambda: Query(["x"]),  # type: ignore[list-item]
            lambda: QueryItem(types="A"),
            lambda: QueryItem(types=[""]),
            lambda: QueryItem(types=[3]),  # type: ignore[list-item]
            lambda: QueryItem(tags="x"),
            lambda: QueryItem(tags=["\x00"]),
        ],
        ids=[
            "no-items",
            "an-item",
            "not-items",
            "types-str",
            "empty-type",
            "int-type",
            "tags-str",
            "nul-tag",
        ],
    )
    def test_bad_queries_are_refused(self, make: Any) -> None:
        with pytest.raises(ValidationError):
            make()

    @pytest.mark.parametrize(
        "condition",
        [
            "not a condition",
            Query.all(),
            AppendCondition("query", 0),  # type: ignore[arg-type]
            AppendCondition(Query.all(), -1),
            AppendCondition(Query.all(), True),
        ],
        ids=["str", "a-query", "query-str", "negative", "bool"],
    )
    def test_bad_conditions_and_reads_are_refused_and_nothing_is_stored(
        self, store: EventStore, condition: Any
    ) -> None:
        before = state(store)
        with pytest.raises(ValidationError):
            store.append("s", [tagged("A")], condition=condition)
        with pytest.raises(ValidationError):
            store.append_events([tagged("A")], condition=condition)
        with pytest.raises(ValidationError), store.transaction() as tx:
            tx.append("s", [tagged("A")], condition=condition)
        assert_unchanged(store, before)
        bad: Any = "x"
        with pytest.raises(ValidationError):
            store.read(bad)
        with pytest.raises(ValidationError):
            store.read(Query.all(), after=-1)
        with pytest.raises(ValidationError):
            store.read(Query.all(), limit=-1)
