"""Two handles on one database: what one wrote is durable and binding for the other.

Uses the ``reopen`` hook. For the memory backend the second handle is the store itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from eventkeep.errors import ConcurrencyError
from eventkeep.store import NO_STREAM, EventStore, StreamAppend
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.testing.base import ContractBase, deposits, is_strictly_increasing, positions
from eventkeep.testing.events import Deposited, Renamed

__all__ = ["HandlesContract"]


class HandlesContract(ContractBase):
    @pytest.fixture
    def other(self, store: EventStore) -> Iterator[EventStore]:
        """A second handle on ``store``'s database."""
        handle = self.reopen(store)
        yield handle
        if handle is not store:
            handle.close()

    def test_a_second_handle_reads_every_event_identically(
        self, store: EventStore, other: EventStore
    ) -> None:
        store.append(
            "a",
            [Deposited(amount=Decimal("1.10")), RawEvent("contract.Unregistered", {"x": [1]})],
            metadata={"correlation_id": "c-1", "free": {"k": "ü"}},
        )
        store.append("b", [NewEvent(Renamed(name="n"), event_id=uuid.uuid4())])
        mine, theirs = list(store.read_all()), list(other.read_all())
        assert theirs == mine
        assert [e.event for e in theirs] == [e.event for e in mine]
        assert [e.metadata for e in theirs] == [e.metadata for e in mine]
        assert other.stats() == store.stats()
        assert other.list_streams() == store.list_streams()

    def test_a_retry_through_a_second_handle_returns_the_original_result(
        self, store: EventStore, other: EventStore
    ) -> None:
        events = [NewEvent(e, event_id=uuid.uuid4()) for e in deposits(1, 2)]
        original = store.append("a", events, expected_version=NO_STREAM)
        store.append("a", deposits(3))
        assert other.append("a", events, expected_version=NO_STREAM) == original
        assert other.stream_version("a") == 3
        assert store.stream_version("a") == 3

    def test_a_stale_expected_version_is_refused_through_a_second_handle(
        self, store: EventStore, other: EventStore
    ) -> None:
        store.append("a", deposits(1), expected_version=0)
        with pytest.raises(ConcurrencyError) as caught:
            other.append("a", deposits(2), expected_version=0)
        assert caught.value.actual == 1
        assert other.append_many([StreamAppend("a", deposits(2), 1)])[0].versions == (2,)
        assert [e.version for e in store.read_stream("a")] == [1, 2]

    def test_a_stream_read_by_one_handle_then_appended_to_by_another_binds_the_first(
        self, store: EventStore, other: EventStore
    ) -> None:
        # A handle may learn a stream's head from reading it to its end (PostgreSQL does, to
        # append in one round trip): the stored head, not the one it read, decides its appends.
        other.append("clock", deposits(1))
        store.append("a", deposits(1, 2), expected_version=0)
        assert [e.version for e in other.read_stream("a")] == [1, 2]
        store.append("a", deposits(3), expected_version=2)
        assert other.append("a", deposits(4)).versions == (4,)  # any version: after the last
        assert [e.version for e in other.read_stream("a", backwards=True, limit=1)] == [4]
        store.append("a", deposits(5), expected_version=4)
        with pytest.raises(ConcurrencyError) as caught:
            other.append("a", deposits(6), expected_version=4)
        assert caught.value.actual == 5
        assert other.append("a", deposits(6), expected_version=5).versions == (6,)
        assert [e.version for e in store.read_stream("a")] == [1, 2, 3, 4, 5, 6]
        assert store.verify().ok

    def test_positions_keep_increasing_when_handles_take_turns(
        self, store: EventStore, other: EventStore
    ) -> None:
        returned: list[int] = []
        for i in range(10):
            handle = store if i % 2 else other
            returned.extend(handle.append(f"s-{i % 3}", deposits(i, i)).positions)
        assert is_strictly_increasing(returned)
        assert positions(store.read_all()) == returned
        assert positions(other.read_all()) == returned

    def test_verify_through_a_second_handle_sees_the_same_chains(
        self, store: EventStore, other: EventStore
    ) -> None:
        store.append("a", deposits(1, 2, 3))
        other.append("a", deposits(4))
        assert store.verify().ok
        assert other.verify() == store.verify()
        self.tamper(store, "a", 2)
        assert [(b.stream_id, b.version) for b in other.verify().broken] == [("a", 2)]

    def test_snapshots_are_shared_between_handles(
        self, store: EventStore, other: EventStore
    ) -> None:
        store.save_snapshot("a", 2, "contract.State", 1, b"state")
        snapshot = other.load_snapshot("a")
        assert snapshot is not None
        assert snapshot.data == b"state"
        assert other.delete_snapshots("a") == 1
        assert store.load_snapshot("a") is None
