"""Store transactions mean one thing on every backend.

- Everything done inside ``store.transaction()`` commits together or rolls back together:
  appends, checkpoints, projection records and snapshots.
- Reads inside the transaction (through the transaction's store, on its thread) see its writes.
- A store method called on the thread while the transaction is open joins it; it never waits
  for a lock its own caller holds. Opening a second transaction on that thread fails at once.
"""

from __future__ import annotations

import pytest

from eventkeep.errors import ValidationError
from eventkeep.store import EventStore
from eventkeep.testing.base import ContractBase, deposits, versions

__all__ = ["TransactionContract"]


class _Rollback(Exception):
    """Raised inside a transaction to roll it back."""


class TransactionContract(ContractBase):
    def test_a_committed_transaction_keeps_appends_checkpoints_records_and_snapshots(
        self, store: EventStore
    ) -> None:
        with store.transaction() as tx:
            tx.append("tx-a", deposits(1, 2), expected_version=0)
            tx.save_checkpoint("tx.reader", 2, expected=None)
            tx.save_record("tx.reader", b"record")
            store.save_snapshot("tx-a", 2, "contract.State", 1, b"state")
        assert versions(store.read_stream("tx-a")) == [1, 2]
        assert store.load_snapshot("tx-a") is not None
        with store.transaction() as tx:
            assert tx.checkpoint("tx.reader") == 2
            assert tx.record("tx.reader") == b"record"

    def test_a_rolled_back_transaction_leaves_no_append_checkpoint_record_or_snapshot(
        self, store: EventStore
    ) -> None:
        store.append("tx-a", deposits(1), expected_version=0)
        store.save_snapshot("tx-a", 1, "contract.State", 1, b"before")

        def write_then_fail() -> None:
            with store.transaction() as tx:
                tx.append("tx-a", deposits(2), expected_version=1)
                tx.append("tx-b", deposits(3), expected_version=0)
                tx.save_checkpoint("tx.reader", 3, expected=None)
                tx.save_record("tx.reader", b"record")
                store.save_snapshot("tx-a", 1, "contract.State", 1, b"replaced")
                store.save_snapshot("tx-a", 2, "contract.State", 1, b"new")
                raise _Rollback

        with pytest.raises(_Rollback):
            write_then_fail()
        assert versions(store.read_stream("tx-a")) == [1]
        assert store.stream_version("tx-b") == 0
        assert store.head_position() == 1
        snapshot = store.load_snapshot("tx-a")
        assert snapshot is not None
        assert (snapshot.version, snapshot.data) == (1, b"before")
        with store.transaction() as tx:
            assert tx.checkpoint("tx.reader") is None
            assert tx.record("tx.reader") is None

    def test_a_store_append_on_the_transactions_thread_joins_it(self, store: EventStore) -> None:

        def append_then_fail() -> None:
            with store.transaction():
                result = store.append("tx-joined", deposits(1), expected_version=0)
                assert result.version == 1
                assert store.stream_version("tx-joined") == 1
                raise _Rollback

        with pytest.raises(_Rollback):
            append_then_fail()
        assert store.stream_version("tx-joined") == 0
        with store.transaction():
            store.append("tx-joined", deposits(1), expected_version=0)
        assert versions(store.read_stream("tx-joined")) == [1]

    def test_reads_inside_a_transaction_see_its_appends(self, store: EventStore) -> None:
        with store.transaction() as tx:
            tx.append("tx-r", deposits(1, 2), expected_version=0)
            assert versions(store.read_stream("tx-r")) == [1, 2]
            assert store.stream_version("tx-r") == 2
            assert [e.stream_id for e in store.read_all()] == ["tx-r", "tx-r"]

    def test_a_second_transaction_on_the_same_thread_is_refused_at_once(
        self, store: EventStore
    ) -> None:
        with store.transaction() as tx:
            tx.append("tx-outer", deposits(1), expected_version=0)
            with pytest.raises(ValidationError, match="already open on this thread"):
                store.transaction().__enter__()
        assert store.stream_version("tx-outer") == 1
        with store.transaction():  # the outer one ended: a new one opens
            pass

    def test_a_conflict_inside_a_transaction_undoes_that_call_only(self, store: EventStore) -> None:
        from eventkeep.errors import ConcurrencyError

        with store.transaction() as tx:
            tx.append("tx-c", deposits(1), expected_version=0)
            with pytest.raises(ConcurrencyError):
                tx.append("tx-c", deposits(2), expected_version=0)
            tx.append("tx-c", deposits(3), expected_version=1)
        assert versions(store.read_stream("tx-c")) == [1, 2]
        assert store.head_position() == 2

    def test_a_check_then_append_race_between_two_transactions_stores_one_claim(
        self, store: EventStore
    ) -> None:
        """Two transactions both check that nobody claimed a name, then claim it with ANY.

        A store transaction that reads the event store is serialized with every other one that
        does, on every backend (SQLite's one writer, the memory store's lock, PostgreSQL's
        sequencer taken at the first read): the second check sees the first claim.
        """
        import threading

        first_checked = threading.Event()
        second_checked = threading.Event()
        claims: list[str] = []
        errors: list[BaseException] = []

        def claim(who: str, first: bool) -> None:
            try:
                if not first:
                    first_checked.wait(timeout=60)
                with store.transaction() as tx:
                    taken = store.stream_version("claim-name") > 0
                    if first:
                        first_checked.set()
                        # Let the second transaction check now, if it can: where transactions
                        # are serialized it cannot, and this wait runs out. Either way the
                        # outcome must be one claim.
                        second_checked.wait(timeout=1.0)
                    else:
                        second_checked.set()
                    if not taken:
                        tx.append("claim-name", deposits(1))
                        claims.append(who)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=claim, args=("first", True)),
            threading.Thread(target=claim, args=("second", False)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert claims == ["first"]
        assert store.stream_version("claim-name") == 1

    def test_projection_state_shows_every_committed_record_and_checkpoint(
        self, store: EventStore
    ) -> None:
        assert store.projection_state() == ([], {})
        with store.transaction() as tx:
            tx.save_record("b.view", b"two")
            tx.save_record("a.view", b"one")
            tx.save_checkpoint("a.view", 7, expected=None)
            tx.save_checkpoint("a.view#rebuild", 3, expected=None)
            assert tx.checkpoints() == {"a.view": 7, "a.view#rebuild": 3}
        records, checkpoints = store.projection_state()
        assert records == [("a.view", b"one"), ("b.view", b"two")]
        assert checkpoints == {"a.view": 7, "a.view#rebuild": 3}
