"""``RecordedEvent``: untracked by the garbage collector, yet equal, hashable and printable as
before (it became a ``msgspec.Struct`` with ``gc=False`` for the cost of long reads)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventkeep
from eventkeep import NO_STREAM, NewEvent, RawEvent, RecordedEvent


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[eventkeep.EventStore]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'r.db'}"
    opened = eventkeep.open_store(url)
    yield opened
    opened.close()


def test_read_events_are_not_tracked_and_cost_no_collection(store: eventkeep.EventStore) -> None:
    store.append(
        "s", [NewEvent(RawEvent("t", {"n": n}), tags=["a:1"]) for n in range(3000)], NO_STREAM
    )
    gc.collect()
    before = gc.get_count()[0]
    events = list(store.read_stream("s"))
    assert len(events) == 3000
    assert not any(gc.is_tracked(event) for event in events)
    # 3,000 tracked objects kept alive would have passed the young generation's threshold
    # (700) several times; untracked events leave its count about where it was.
    assert gc.get_count()[0] - before < 700
    first = events[0]
    assert first.data == {"n": 0}
    assert first.tags == ("a:1",)
    assert not gc.is_tracked(first)  # still untracked once its data is decoded


def test_equality_hash_and_repr_are_the_envelopes(store: eventkeep.EventStore) -> None:
    store.append("s", [RawEvent("t", {"n": 1})], NO_STREAM)
    one, again = next(iter(store.read_stream("s"))), next(iter(store.read_stream("s")))
    assert one is not again
    assert one == again
    assert hash(one) == hash(again)
    assert len({one, again}) == 1
    assert repr(one) == (
        f"RecordedEvent(stream_id='s', version=1, position={one.position}, type='t', "
        f"event_id={one.event_id})"
    )
    assert "codec" not in repr(one)
    assert "_raw" not in str(one.__rich_repr__())
    store.append("s", [RawEvent("t", {"n": 2})], 1)
    assert one != list(store.read_stream("s"))[1]
    assert one != "not an event"


def test_is_the_public_type() -> None:
    assert eventkeep.RecordedEvent is RecordedEvent
