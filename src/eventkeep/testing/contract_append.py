"""Appends: versions and positions, atomicity, expected versions, idempotent retries."""

from __future__ import annotations

import contextlib
import uuid
from decimal import Decimal
from typing import Any

import pytest

from eventkeep.errors import ConcurrencyError, DuplicateEventIdError, EventkeepError
from eventkeep.store import ANY, NO_STREAM, STREAM_EXISTS, EventStore, StreamAppend
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.testing.base import (
    ContractBase,
    assert_unchanged,
    deposits,
    is_strictly_increasing,
    positions,
    state,
    versions,
)
from eventkeep.testing.events import Deposited, Withdrawn

__all__ = ["AppendContract"]

# (stream version before the append, expected_version, accepted?)
EXPECTED_VERSION_CASES: list[Any] = [
    pytest.param(0, ANY, True, id="ANY-on-a-new-stream"),
    pytest.param(2, ANY, True, id="ANY-on-an-existing-stream"),
    pytest.param(0, NO_STREAM, True, id="NO_STREAM-on-a-new-stream"),
    pytest.param(2, NO_STREAM, False, id="NO_STREAM-on-an-existing-stream"),
    pytest.param(0, STREAM_EXISTS, False, id="STREAM_EXISTS-on-a-new-stream"),
    pytest.param(2, STREAM_EXISTS, True, id="STREAM_EXISTS-on-an-existing-stream"),
    pytest.param(0, 0, True, id="0-on-a-new-stream"),
    pytest.param(0, 1, False, id="1-on-a-new-stream"),
    pytest.param(2, 2, True, id="the-actual-version"),
    pytest.param(2, 0, False, id="0-on-an-existing-stream"),
    pytest.param(2, 1, False, id="a-version-behind"),
    pytest.param(2, 3, False, id="a-version-ahead"),
]


def with_ids(*events: Any) -> list[NewEvent]:
    return [NewEvent(e, event_id=uuid.uuid4()) for e in events]


class AppendContract(ContractBase):
    # -- versions and positions ---------------------------------------------------------------

    def test_an_append_to_a_new_stream_returns_versions_from_one_and_positions(
        self, store: EventStore
    ) -> None:
        result = store.append("account-1", deposits(1, 2, 3), expected_version=NO_STREAM)
        assert result.stream_id == "account-1"
        assert result.versions == (1, 2, 3)
        assert len(result.positions) == 3
        assert is_strictly_increasing(list(result.positions))
        assert result.positions[0] >= 1
        assert (result.version, result.position) == (3, result.positions[-1])
        stored = list(store.read_stream("account-1"))
        assert [(e.version, e.position) for e in stored] == list(
            zip(result.versions, result.positions, strict=True)
        )

    def test_a_later_append_continues_the_stream_versions(self, store: EventStore) -> None:
        first = store.append("account-1", deposits(1, 2))
        second = store.append("account-1", deposits(3), expected_version=2)
        third = store.append("account-1", deposits(4, 5))
        assert (first.versions, second.versions, third.versions) == ((1, 2), (3,), (4, 5))
        assert versions(store.read_stream("account-1")) == [1, 2, 3, 4, 5]

    def test_each_stream_counts_its_own_versions(self, store: EventStore) -> None:
        store.append("account-1", deposits(1, 2))
        result = store.append("account-2", deposits(3))
        assert result.versions == (1,)
        assert store.stream_version("account-1") == 2
        assert store.stream_version("account-2") == 1

    def test_positions_increase_across_streams_in_the_order_appends_return(
        self, store: EventStore
    ) -> None:
        returned: list[int] = []
        for i in range(12):
            returned.extend(store.append(f"account-{i % 3}", deposits(i, i + 1)).positions)
        assert is_strictly_increasing(returned)
        assert positions(store.read_all()) == returned

    # -- atomic multi-stream appends ----------------------------------------------------------

    def test_append_many_writes_every_stream_and_returns_results_in_call_order(
        self, store: EventStore
    ) -> None:
        store.append("account-2", deposits(1))
        results = store.append_many(
            [
                StreamAppend("account-1", deposits(10, 11), NO_STREAM),
                StreamAppend("account-2", deposits(12), 1),
                StreamAppend("account-3", [Withdrawn(amount=Decimal(1))]),
            ]
        )
        assert [r.stream_id for r in results] == ["account-1", "account-2", "account-3"]
        assert [r.versions for r in results] == [(1, 2), (2,), (1,)]
        written = [p for r in results for p in r.positions]
        assert is_strictly_increasing(written)
        assert positions(store.read_all())[1:] == written

    @pytest.mark.parametrize("failing", [0, 1, 2], ids=["first", "middle", "last"])
    def test_append_many_with_one_wrong_expected_version_writes_no_stream(
        self, store: EventStore, failing: int
    ) -> None:
        for name in ("a", "b", "c"):
            store.append(name, deposits(1))
        before = state(store)
        appends = [
            StreamAppend(name, deposits(2, 3), 5 if i == failing else 1)
            for i, name in enumerate(("a", "b", "c"))
        ]
        with pytest.raises(ConcurrencyError) as caught:
            store.append_many(appends)
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            "abc"[failing],
            5,
            1,
        )
        assert_unchanged(store, before)

    def test_append_many_with_a_reused_event_id_in_its_last_stream_writes_no_stream(
        self, store: EventStore
    ) -> None:
        taken = NewEvent(Deposited(amount=Decimal(1)), event_id=uuid.uuid4())
        store.append("a", [taken])
        before = state(store)
        with pytest.raises(DuplicateEventIdError):
            store.append_many(
                [
                    StreamAppend("b", deposits(1, 2)),
                    StreamAppend("c", [NewEvent(Withdrawn(amount=Decimal(9)), taken.event_id)]),
                ]
            )
        assert_unchanged(store, before)

    # -- expected versions --------------------------------------------------------------------

    @pytest.mark.parametrize(("existing", "expected", "accepted"), EXPECTED_VERSION_CASES)
    def test_each_expected_version_mode_accepts_or_refuses_as_specified(
        self, store: EventStore, existing: int, expected: Any, accepted: bool
    ) -> None:
        if existing:
            store.append("account-1", deposits(*range(existing)))
        store.append("account-2", deposits(7))  # another stream must not count
        before = state(store)
        if accepted:
            result = store.append("account-1", deposits(8, 9), expected_version=expected)
            assert result.versions == (existing + 1, existing + 2)
            assert store.stream_version("account-1") == existing + 2
            return
        with pytest.raises(ConcurrencyError) as caught:
            store.append("account-1", deposits(8, 9), expected_version=expected)
        error = caught.value
        assert isinstance(error, EventkeepError)
        assert (error.stream_id, error.expected, error.actual) == ("account-1", expected, existing)
        assert "account-1" in str(error)
        assert_unchanged(store, before)

    def test_a_wrong_expected_version_writes_nothing_and_the_right_one_then_succeeds(
        self, store: EventStore
    ) -> None:
        store.append("account-1", deposits(1, 2, 3))
        before = state(store)
        with pytest.raises(ConcurrencyError):
            store.append("account-1", deposits(4), expected_version=2)
        assert_unchanged(store, before)
        assert store.append("account-1", deposits(4), expected_version=3).versions == (4,)

    def test_two_writers_expecting_the_same_version_only_the_first_succeeds(
        self, store: EventStore
    ) -> None:
        store.append("account-1", deposits(1))
        store.append("account-1", deposits(2), expected_version=1)
        with pytest.raises(ConcurrencyError) as caught:
            store.append("account-1", deposits(3), expected_version=1)
        assert caught.value.actual == 2
        assert [e.event for e in store.read_stream("account-1")] == deposits(1, 2)

    # -- idempotent retries -------------------------------------------------------------------

    @pytest.mark.parametrize(
        "expected", [ANY, NO_STREAM, 0], ids=["ANY", "NO_STREAM", "exact-version"]
    )
    def test_a_retried_append_returns_the_original_result_and_writes_nothing(
        self, store: EventStore, expected: Any
    ) -> None:
        events = with_ids(*deposits(1, 2, 3))
        original = store.append("account-1", events, expected_version=expected)
        before = state(store)
        assert store.append("account-1", events, expected_version=expected) == original
        assert_unchanged(store, before)

    @pytest.mark.parametrize(
        "expected", [ANY, STREAM_EXISTS, 1], ids=["ANY", "STREAM_EXISTS", "exact-version"]
    )
    def test_a_retry_after_the_stream_moved_on_returns_the_original_result(
        self, store: EventStore, expected: Any
    ) -> None:
        store.append("account-1", deposits(1))
        events = with_ids(*deposits(2, 3))
        original = store.append("account-1", events, expected_version=expected)
        store.append("account-1", deposits(4, 5))
        store.append("account-2", deposits(6))
        before = state(store)
        assert store.append("account-1", events, expected_version=expected) == original
        assert_unchanged(store, before)
        assert store.stream_version("account-1") == 5

    def test_a_retry_is_recognised_after_many_later_appends(self, store: EventStore) -> None:
        events = with_ids(*deposits(1, 2))
        original = store.append("account-1", events, expected_version=NO_STREAM)
        for i in range(30):
            store.append(f"other-{i}", [RawEvent("contract.Noise", {"i": j}) for j in range(50)])
        before = state(store)
        assert store.append("account-1", events, expected_version=NO_STREAM) == original
        assert_unchanged(store, before)

    def test_a_retried_multi_stream_append_returns_the_original_results(
        self, store: EventStore
    ) -> None:
        appends = [
            StreamAppend("account-1", with_ids(*deposits(1, 2)), NO_STREAM),
            StreamAppend("account-2", with_ids(*deposits(3)), NO_STREAM),
        ]
        original = store.append_many(appends)
        store.append("account-1", deposits(4))
        before = state(store)
        assert store.append_many(appends) == original
        assert_unchanged(store, before)

    def test_a_retried_append_keeps_the_original_metadata(self, store: EventStore) -> None:
        events = with_ids(Deposited(amount=Decimal(1)))
        store.append("account-1", events, metadata={"attempt": 1})
        store.append("account-1", events, metadata={"attempt": 2})
        assert [e.metadata for e in store.read_all()] == [{"attempt": 1}]

    def test_an_event_id_reused_for_a_different_event_raises_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        event_id = uuid.uuid4()
        store.append("account-1", [NewEvent(Deposited(amount=Decimal(1)), event_id)])
        before = state(store)
        for other in (Deposited(amount=Decimal(2)), Withdrawn(amount=Decimal(1))):
            with pytest.raises(DuplicateEventIdError) as caught:
                store.append("account-1", [NewEvent(other, event_id)])
            assert str(event_id) in str(caught.value)
            assert_unchanged(store, before)

    @pytest.mark.parametrize("count", [2, 33, 100, 129, 300])
    def test_a_long_append_is_stored_whole_and_in_order(
        self, store: EventStore, count: int
    ) -> None:
        # Backends may insert a long append in several statements (SQLite: chunks of 128, 64
        # and 32 rows and the rest); none of that may show.
        store.append("before", deposits(1))
        result = store.append("long", deposits(*range(1, count + 1)))
        assert result.versions == tuple(range(1, count + 1))
        assert result.positions == tuple(range(2, count + 2))
        read = list(store.read_stream("long"))
        assert [r.event for r in read] == deposits(*range(1, count + 1))
        assert [r.position for r in read] == list(result.positions)
        assert store.verify().ok

    @pytest.mark.parametrize("count", [33, 100, 300])
    def test_a_long_append_reusing_a_stored_event_id_last_writes_nothing(
        self, store: EventStore, count: int
    ) -> None:
        taken = with_ids(*deposits(0))
        store.append("a", taken)
        before = state(store)
        events = [*with_ids(*deposits(*range(1, count))), taken[0]]
        with pytest.raises(DuplicateEventIdError):
            store.append("b", events)
        assert_unchanged(store, before)
        assert store.append("b", events[:-1]).positions[0] == 2  # nothing was left half-written

    def test_an_event_id_reused_in_another_stream_raises_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        events = with_ids(*deposits(1))
        store.append("account-1", events)
        before = state(store)
        with pytest.raises(DuplicateEventIdError):
            store.append("account-2", events)
        assert_unchanged(store, before)
        assert store.stream_version("account-2") == 0

    def test_an_append_reusing_only_some_stored_event_ids_raises_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        stored = with_ids(*deposits(1, 2))
        store.append("account-1", stored)
        before = state(store)
        for partial in (
            [stored[0], *with_ids(*deposits(3))],
            [*with_ids(*deposits(3)), stored[1]],
            [stored[1], stored[0]],
        ):
            with pytest.raises(DuplicateEventIdError):
                store.append("account-1", partial)
            assert_unchanged(store, before)

    def test_a_retry_whose_expected_version_contradicts_where_it_was_stored_raises(
        self, store: EventStore
    ) -> None:
        store.append("account-1", deposits(1))
        events = with_ids(*deposits(2))
        store.append("account-1", events, expected_version=1)
        before = state(store)
        with pytest.raises((DuplicateEventIdError, ConcurrencyError)):
            store.append("account-1", events, expected_version=NO_STREAM)
        assert_unchanged(store, before)

    def test_a_given_event_id_is_never_stored_twice_under_any_expected_version(
        self, store: EventStore
    ) -> None:
        events = with_ids(*deposits(1))
        store.append("account-1", events)
        for expected in (ANY, STREAM_EXISTS, 0, 1):
            with contextlib.suppress(EventkeepError):
                store.append("account-1", events, expected_version=expected)
        assert [e.event_id for e in store.read_all()] == [events[0].event_id]
