"""Reads: stream ranges, the global log and its filters, paging, listings and counts."""

from __future__ import annotations

import gc
import threading
from decimal import Decimal
from typing import Any

import pytest

from eventkeep.store import PAGE_SIZE, AppendResult, EventStore, StreamAppend, StreamInfo
from eventkeep.store.events import RawEvent
from eventkeep.store.recorded import RecordedEvent
from eventkeep.testing.base import (
    ContractBase,
    deposits,
    is_strictly_increasing,
    positions,
    typed,
    versions,
)
from eventkeep.testing.events import Deposited, Renamed, Withdrawn

__all__ = ["ReadContract"]

# (from_version, to_version, backwards, limit) over a stream of 10 events
STREAM_RANGES: list[Any] = [
    pytest.param(1, None, False, None, id="all"),
    pytest.param(4, None, False, None, id="from-4"),
    pytest.param(1, 6, False, None, id="to-6"),
    pytest.param(3, 7, False, None, id="3-to-7"),
    pytest.param(5, 5, False, None, id="just-5"),
    pytest.param(10, None, False, None, id="from-the-last"),
    pytest.param(11, None, False, None, id="from-past-the-end"),
    pytest.param(1, 0, False, None, id="to-0"),
    pytest.param(7, 3, False, None, id="an-empty-range"),
    pytest.param(1, 25, False, None, id="to-past-the-end"),
    pytest.param(1, None, False, 3, id="first-3"),
    pytest.param(4, 9, False, 2, id="limit-inside-a-range"),
    pytest.param(1, None, False, 0, id="limit-0"),
    pytest.param(1, None, False, 50, id="limit-past-the-end"),
    pytest.param(1, None, True, None, id="backwards"),
    pytest.param(1, None, True, 1, id="backwards-the-last"),
    pytest.param(1, None, True, 3, id="backwards-last-3"),
    pytest.param(3, 7, True, None, id="backwards-3-to-7"),
    pytest.param(3, 7, True, 2, id="backwards-3-to-7-limit-2"),
    pytest.param(8, None, True, 5, id="backwards-from-8-limit-5"),
    pytest.param(11, None, True, None, id="backwards-past-the-end"),
]


def seed(store: EventStore) -> list[AppendResult]:
    """Three streams in two categories, appended interleaved, with four event types."""
    return [
        store.append("account-1", deposits(10, 20)),
        store.append("order-1", [Renamed(name="first")]),
        store.append("account-2", [Withdrawn(amount=Decimal(5))]),
        store.append("account-1", [Withdrawn(amount=Decimal(1))]),
        store.append("order-1", [RawEvent("contract.NameChanged", {"name": "old"})]),
        store.append("account-10", deposits(7)),
        store.append("order-1", [RawEvent("contract.Unregistered", {"x": 1})]),
    ]


def written(results: list[AppendResult]) -> list[tuple[str, int, int]]:
    return [
        (r.stream_id, v, p) for r in results for v, p in zip(r.versions, r.positions, strict=True)
    ]


def keys(events: Any) -> list[tuple[str, int, int]]:
    return [(e.stream_id, e.version, e.position) for e in events]


class ReadContract(ContractBase):
    # -- read_stream --------------------------------------------------------------------------

    @pytest.mark.parametrize(("low", "high", "backwards", "limit"), STREAM_RANGES)
    def test_read_stream_yields_exactly_the_requested_range(
        self, store: EventStore, low: int, high: int | None, backwards: bool, limit: int | None
    ) -> None:
        store.append("s", deposits(*range(1, 6)))
        store.append("other", deposits(99))
        store.append("s", deposits(*range(6, 11)))
        wanted = [v for v in range(1, 11) if v >= low and (high is None or v <= high)]
        if backwards:
            wanted.reverse()
        if limit is not None:
            wanted = wanted[:limit]
        events = list(store.read_stream("s", low, high, backwards=backwards, limit=limit))
        assert versions(events) == wanted
        assert typed(events) == [Deposited(amount=Decimal(v)) for v in wanted]
        assert all(e.stream_id == "s" for e in events)

    def test_the_largest_64_bit_numbers_are_usable_as_open_bounds(self, store: EventStore) -> None:
        top = 2**63 - 1
        store.append("s", deposits(1, 2, 3))
        assert versions(store.read_stream("s", 1, top, limit=top)) == [1, 2, 3]
        assert versions(store.read_stream("s", top)) == []
        assert versions(store.read_stream("s", 2, top, backwards=True)) == [3, 2]
        assert len(list(store.read_all(limit=top))) == 3
        assert list(store.read_all(after=top)) == []
        assert len(store.list_streams(limit=top)) == 1
        # Schema versions are small by nature: 32 bits is all a backend must store for them.
        store.save_snapshot("s", top, "contract.State", 2**31 - 1, b"x")
        snapshot = store.load_snapshot("s", max_version=top)
        assert snapshot is not None
        assert (snapshot.version, snapshot.schema_version) == (top, 2**31 - 1)

    def test_reading_a_stream_that_does_not_exist_yields_nothing(self, store: EventStore) -> None:
        store.append("account-1", deposits(1))
        assert list(store.read_stream("account-2")) == []
        assert list(store.read_stream("account-2", backwards=True)) == []
        assert list(store.read_stream("account-")) == []

    def test_read_stream_gives_each_event_the_position_its_append_returned(
        self, store: EventStore
    ) -> None:
        results = seed(store)
        for stream_id in ("account-1", "order-1"):
            mine = [k for k in written(results) if k[0] == stream_id]
            assert keys(store.read_stream(stream_id)) == mine
            assert keys(store.read_stream(stream_id, backwards=True)) == mine[::-1]

    # -- read_all -----------------------------------------------------------------------------

    def test_read_all_yields_every_event_in_global_order(self, store: EventStore) -> None:
        results = seed(store)
        events = list(store.read_all())
        assert keys(events) == written(results)
        assert is_strictly_increasing(positions(events))

    def test_read_events_are_recorded_events_the_garbage_collector_does_not_track(
        self, store: EventStore
    ) -> None:
        """Every backend hands out the one ``RecordedEvent`` type, untracked by the collector
        (a ``msgspec.Struct`` with ``gc=False``: long reads trigger no collections), read
        from a stream, from the log and from a query, decoded or not."""
        seed(store)
        read = [
            *store.read_stream("account-1"),
            *store.read_all(),
            *store.read_all(types=["contract.Deposited"]),
        ]
        assert read
        for recorded in read:
            assert type(recorded) is RecordedEvent
            recorded.event  # noqa: B018 - decoded, and still untracked
            assert not gc.is_tracked(recorded)

    def test_read_all_after_a_position_yields_only_later_events(self, store: EventStore) -> None:
        everything = written(seed(store))
        for index, (_, _, position) in enumerate(everything):
            assert keys(store.read_all(after=position)) == everything[index + 1 :]
        assert keys(store.read_all(after=0)) == everything
        assert list(store.read_all(after=store.head_position())) == []
        assert list(store.read_all(after=store.head_position() + 1000)) == []

    def test_read_all_with_a_limit_yields_the_first_events_after_the_position(
        self, store: EventStore
    ) -> None:
        everything = written(seed(store))
        assert keys(store.read_all(limit=3)) == everything[:3]
        assert keys(store.read_all(after=everything[1][2], limit=2)) == everything[2:4]
        assert list(store.read_all(limit=0)) == []
        assert keys(store.read_all(limit=100)) == everything

    def test_a_reader_resuming_from_its_checkpoint_sees_every_event_once(
        self, store: EventStore
    ) -> None:
        everything = written(seed(store))
        seen: list[tuple[str, int, int]] = []
        checkpoint = 0
        for _ in range(len(everything)):  # bounded: a reader stuck on one page must fail, not hang
            page = keys(store.read_all(after=checkpoint, limit=2))
            if not page:
                break
            seen.extend(page)
            checkpoint = page[-1][2]
        assert seen == everything
        assert list(store.read_all(after=checkpoint)) == []

    def test_read_all_filters_by_type_name(self, store: EventStore) -> None:
        seed(store)
        deposited = list(store.read_all(types=["contract.Deposited"]))
        assert [(e.stream_id, e.version) for e in deposited] == [
            ("account-1", 1),
            ("account-1", 2),
            ("account-10", 1),
        ]
        assert [e.type for e in store.read_all(types="contract.Withdrawn")] == [
            "contract.Withdrawn"
        ] * 2
        both = list(store.read_all(types=["contract.Withdrawn", "contract.Unregistered"]))
        assert [e.type for e in both] == [
            "contract.Withdrawn",
            "contract.Withdrawn",
            "contract.Unregistered",
        ]
        assert is_strictly_increasing(positions(both))

    def test_read_all_filters_by_event_class_including_its_aliases(self, store: EventStore) -> None:
        seed(store)
        renamed = list(store.read_all(types=[Renamed]))
        assert [e.type for e in renamed] == ["contract.Renamed", "contract.NameChanged"]
        assert typed(renamed) == [Renamed(name="first"), Renamed(name="old")]
        assert [e.type for e in store.read_all(types=[Deposited])] == ["contract.Deposited"] * 3
        mixed = list(store.read_all(types=[Withdrawn, "contract.Unregistered"]))
        assert len(mixed) == 3

    def test_read_all_with_no_matching_types_yields_nothing(self, store: EventStore) -> None:
        seed(store)
        assert list(store.read_all(types=[])) == []
        assert list(store.read_all(types=["contract.NeverStored"])) == []

    def test_read_all_filters_by_stream_prefix(self, store: EventStore) -> None:
        everything = written(seed(store))
        accounts = [k for k in everything if k[0].startswith("account-")]
        assert keys(store.read_all(stream_prefix="account-")) == accounts
        assert keys(store.read_all(stream_prefix="account-1")) == [
            k for k in everything if k[0] in ("account-1", "account-10")
        ]
        assert keys(store.read_all(stream_prefix="")) == everything
        assert list(store.read_all(stream_prefix="nothing-")) == []
        assert list(store.read_all(stream_prefix="Account-")) == []

    def test_read_all_combines_prefix_types_after_and_limit(self, store: EventStore) -> None:
        seed(store)
        first = next(store.read_all(stream_prefix="account-", types=[Deposited]))
        events = list(
            store.read_all(
                after=first.position, limit=1, stream_prefix="account-", types=[Deposited]
            )
        )
        assert [(e.stream_id, e.version) for e in events] == [("account-1", 2)]

    def test_a_stream_prefix_is_matched_literally_not_as_a_pattern(self, store: EventStore) -> None:
        for name in ("a_b", "axb", "a%c", "a%", "A_b", "a\\b"):
            store.append(name, deposits(1))
        assert [e.stream_id for e in store.read_all(stream_prefix="a_")] == ["a_b"]
        assert [e.stream_id for e in store.read_all(stream_prefix="a%")] == ["a%c", "a%"]
        assert [e.stream_id for e in store.read_all(stream_prefix="a\\")] == ["a\\b"]
        assert [s.stream_id for s in store.list_streams("a_")] == ["a_b"]
        assert [s.stream_id for s in store.list_streams("a%")] == ["a%", "a%c"]

    # -- paging -------------------------------------------------------------------------------

    def test_reads_page_through_more_than_one_page_of_events(self, store: EventStore) -> None:
        total = 2 * PAGE_SIZE + 500
        chunk = PAGE_SIZE // 2
        returned: list[int] = []
        for start in range(0, total, chunk):
            stream = "big" if (start // chunk) % 3 else "side"
            batch = [
                RawEvent("contract.Rare" if n % 97 == 0 else "contract.Common", {"n": n})
                for n in range(start, min(start + chunk, total))
            ]
            returned.extend(store.append(stream, batch).positions)
        events = list(store.read_all())
        assert positions(events) == returned
        assert [e.data["n"] for e in events] == list(range(total))
        assert len(list(store.read_all(after=returned[PAGE_SIZE - 1]))) == total - PAGE_SIZE
        assert positions(store.read_all(limit=PAGE_SIZE + 1)) == returned[: PAGE_SIZE + 1]
        rare = [e.data["n"] for e in store.read_all(types=["contract.Rare"])]
        assert rare == list(range(0, total, 97))
        big = [e.data["n"] for e in store.read_all(stream_prefix="bi")]
        assert big == [e.data["n"] for e in events if e.stream_id == "big"]
        assert len(big) > PAGE_SIZE

    def test_read_stream_pages_forwards_and_backwards(self, store: EventStore) -> None:
        total = 2 * PAGE_SIZE + 300
        for start in range(0, total, PAGE_SIZE):
            store.append("big", deposits(*range(start + 1, min(start + PAGE_SIZE, total) + 1)))
        assert versions(store.read_stream("big")) == list(range(1, total + 1))
        assert versions(store.read_stream("big", backwards=True)) == list(range(total, 0, -1))
        assert versions(store.read_stream("big", 5, limit=PAGE_SIZE + 7)) == list(
            range(5, PAGE_SIZE + 12)
        )
        assert versions(store.read_stream("big", backwards=True, limit=PAGE_SIZE + 7)) == list(
            range(total, total - PAGE_SIZE - 7, -1)
        )
        middle = versions(store.read_stream("big", 100, total - 100, backwards=True))
        assert middle == list(range(total - 100, 99, -1))

    # -- stream versions, listings, counts ----------------------------------------------------

    def test_stream_version_counts_the_events_of_the_stream(self, store: EventStore) -> None:
        assert store.stream_version("account-1") == 0
        seed(store)
        assert store.stream_version("account-1") == 3
        assert store.stream_version("order-1") == 3
        assert store.stream_version("account-2") == 1
        assert store.stream_version("account") == 0

    def test_list_streams_lists_streams_by_prefix_sorted_by_id(self, store: EventStore) -> None:
        assert store.list_streams() == []
        results = seed(store)
        last = {r.stream_id: r.position for r in results}
        expected = [
            StreamInfo("account-1", 3, last["account-1"]),
            StreamInfo("account-10", 1, last["account-10"]),
            StreamInfo("account-2", 1, last["account-2"]),
            StreamInfo("order-1", 3, last["order-1"]),
        ]
        assert store.list_streams() == expected
        assert store.list_streams("account-") == expected[:3]
        assert store.list_streams("account-1") == expected[:2]
        assert store.list_streams("order-1") == expected[3:]
        assert store.list_streams("nothing") == []
        assert store.list_streams(limit=2) == expected[:2]
        assert store.list_streams("account-", limit=0) == []

    def test_list_streams_sorts_by_code_point_whatever_the_locale(self, store: EventStore) -> None:
        names = ["b1", "é", "B", "_x", "a", "b-1", "Z", "a b", "ab", "e\u0301", "日本", "🙂"]
        for name in names:
            store.append(name, deposits(1))
        assert [s.stream_id for s in store.list_streams()] == sorted(names)
        assert [s.stream_id for s in store.list_streams("b")] == ["b-1", "b1"]

    def test_stats_count_events_streams_and_types(self, store: EventStore) -> None:
        empty = store.stats()
        assert (empty.events, empty.streams, empty.head_position, empty.types) == (0, 0, 0, {})
        results = seed(store)
        stats = store.stats()
        assert stats.events == 8
        assert stats.streams == 4
        assert stats.head_position == results[-1].position
        assert stats.types == {
            "contract.Deposited": 3,
            "contract.Withdrawn": 2,
            "contract.Renamed": 1,
            "contract.NameChanged": 1,
            "contract.Unregistered": 1,
        }

    def test_head_position_is_the_position_of_the_last_event(self, store: EventStore) -> None:
        assert store.head_position() == 0
        result = store.append("account-1", deposits(1, 2))
        assert store.head_position() == result.position
        results = store.append_many(
            [StreamAppend("a", deposits(3)), StreamAppend("b", deposits(4, 5))]
        )
        assert store.head_position() == results[-1].position
        assert store.head_position() == max(positions(store.read_all()))

    # -- global order -------------------------------------------------------------------------

    def test_a_reader_never_sees_a_new_event_at_or_below_a_position_it_has_read(
        self, store: EventStore
    ) -> None:
        checkpoint = 0
        seen: list[int] = []
        for i in range(20):
            if i % 3 == 0:
                store.append_many(
                    [StreamAppend(f"a-{i}", deposits(i)), StreamAppend(f"b-{i}", deposits(i, i))]
                )
            else:
                store.append(f"a-{i % 4}", deposits(*range(i % 3 + 1)))
            page = positions(store.read_all(after=checkpoint))
            assert page, "a reader must see the events appended since its checkpoint"
            assert all(p > checkpoint for p in page)
            seen.extend(page)
            checkpoint = page[-1]
        assert seen == positions(store.read_all())
        assert is_strictly_increasing(seen)

    def test_concurrent_writers_and_a_polling_reader_agree_on_every_event(
        self, store: EventStore
    ) -> None:
        acknowledged: list[list[int]] = [[] for _ in range(4)]
        seen: list[int] = []
        failures: list[BaseException] = []
        writers_done = threading.Event()

        def write(writer: int) -> None:
            try:
                for i in range(15):
                    result = store.append(f"w{writer}-{i % 3}", deposits(writer, i))
                    acknowledged[writer].extend(result.positions)
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        def read() -> None:
            checkpoint = 0
            try:
                while True:
                    last_round = writers_done.is_set()
                    page = positions(store.read_all(after=checkpoint))
                    assert all(p > checkpoint for p in page), (checkpoint, page)
                    seen.extend(page)
                    checkpoint = page[-1] if page else checkpoint
                    if last_round:
                        return
            except BaseException as exc:
                failures.append(exc)

        reader = threading.Thread(target=read)
        writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        reader.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        writers_done.set()
        reader.join()
        assert failures == []
        for mine in acknowledged:
            assert len(mine) == 30
            assert is_strictly_increasing(mine)
        assert seen == sorted(p for mine in acknowledged for p in mine)
