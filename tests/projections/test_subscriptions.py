"""Subscriptions: catch up from a checkpoint, then follow live, with no gap and no duplicate."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from projection_harness import Processes

import eventkeep
from eventkeep import EventStore, RawEvent
from eventkeep.examples.bank import Deposited, Withdrawn
from eventkeep.projections import END, Subscription


def fill(store: EventStore, count: int, stream: str = "s-1", type: str = "Numbered") -> None:
    store.append(stream, [RawEvent(type, {"seq": i}) for i in range(count)])


def test_catch_up_from_the_start_in_batches(store: EventStore) -> None:
    fill(store, 25)
    subscription = Subscription(store, batch_size=10)
    sizes = [len(b.events) for b in subscription.batches(idle_timeout=0.05)]
    assert sizes == [10, 10, 5]
    assert subscription.position == 25


def test_catch_up_from_a_checkpoint_and_from_the_end(store: EventStore) -> None:
    fill(store, 10)
    from_seven = Subscription(store, after=7)
    assert [e.position for e in from_seven.fetch().events] == [8, 9, 10]
    at_end = Subscription(store, after=END)
    fill(store, 2)
    assert [e.position for e in at_end.fetch().events] == [11, 12]


def test_filters_by_type_and_stream_prefix(store: EventStore) -> None:
    store.append("bankaccount-1", [Deposited(amount=1, currency="EUR")])
    store.append("other-1", [Deposited(amount=2, currency="EUR")])
    store.append("bankaccount-1", [Withdrawn(amount=1)])
    fill(store, 3, "bankaccount-2", "Unrelated")
    subscription = Subscription(store, types=[Deposited, Withdrawn], stream_prefix="bankaccount-")
    batch = subscription.fetch()
    assert [(e.stream_id, e.type) for e in batch.events] == [
        ("bankaccount-1", "bank.Deposited"),
        ("bankaccount-1", "bank.Withdrawn"),
    ]
    # The unmatched events up to the head need not be read again.
    assert batch.position == 6
    assert batch.caught_up


def test_a_slow_consumer_is_delayed_never_dropped(store: EventStore) -> None:
    fill(store, 30)
    subscription = Subscription(store, batch_size=7)
    seen: list[int] = []
    for batch in subscription.batches(idle_timeout=0.05):
        seen.extend(e.position for e in batch.events)
        if len(seen) < 14:
            fill(store, 5, "s-2")  # the head keeps running away while we dawdle
    assert seen == list(range(1, 36))


def test_a_consumer_that_fails_gets_the_batch_again(store: EventStore) -> None:
    fill(store, 5)
    subscription = Subscription(store, batch_size=3)

    def consume() -> None:
        for _batch in subscription.batches():
            raise RuntimeError("consumer died")

    with pytest.raises(RuntimeError):
        consume()
    assert [e.position for e in subscription.fetch().events] == [1, 2, 3]


def test_catch_up_then_live_with_writer_threads_loses_and_duplicates_nothing(
    store: EventStore,
) -> None:
    fill(store, 300, "w9-0")
    writers = [
        threading.Thread(target=fill_slowly, args=(store, n, 200), daemon=True) for n in range(3)
    ]
    for thread in writers:
        thread.start()
    got = consume_until(Subscription(store, batch_size=50), 300 + 3 * 200)
    for thread in writers:
        thread.join(30)
    check_log(got, {"w9": 300, "w0": 200, "w1": 200, "w2": 200})


def fill_slowly(store: EventStore, writer: int, count: int) -> None:
    for seq in range(count):
        store.append(f"w{writer}-{seq % 7}", [RawEvent("Numbered", {"seq": seq})])


def consume_until(subscription: Subscription, total: int) -> list[eventkeep.RecordedEvent]:
    got: list[eventkeep.RecordedEvent] = []
    stop = threading.Event()
    timer = threading.Timer(120, stop.set)  # never hang: fail on the count instead
    timer.start()
    try:
        for batch in subscription.batches(stop):
            got.extend(batch.events)
            if len(got) >= total:
                break
    finally:
        timer.cancel()
    assert len(got) == total, f"got {len(got)} of {total} events"
    return got


def check_log(got: list[eventkeep.RecordedEvent], per_writer: dict[str, int]) -> None:
    positions = [e.position for e in got]
    assert positions == sorted(set(positions)), "duplicates or disorder"
    seqs = Counter((e.stream_id.split("-")[0], e.data["seq"]) for e in got)
    assert all(count == 1 for count in seqs.values()), "a duplicate"
    for writer, count in per_writer.items():
        assert sorted(s for w, s in seqs if w == writer) == list(range(count)), writer


@pytest.mark.slow
def test_catch_up_then_live_with_writer_processes_loses_and_duplicates_nothing(
    sql_url: str, processes: Processes, tmp_path: Path
) -> None:
    with eventkeep.open_store(sql_url) as store:
        fill(store, 2000, "w9-0")  # a backlog to catch up on while the writers start
        writers = [processes.worker("log", sql_url, n, 400) for n in range(3)]
        got = consume_until(Subscription(store, batch_size=100), 2000 + 3 * 400)
        for proc in writers:
            assert processes.finish(proc) == 0, processes.log(proc)
        check_log(got, {"w9": 2000, "w0": 400, "w1": 400, "w2": 400})
        assert [e.position for e in got] == [e.position for e in store.read_all()]
