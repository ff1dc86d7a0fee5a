"""store.transaction(): appends, checkpoints and SQL commit together or not at all."""

from __future__ import annotations

import contextlib
import threading

import pytest

import eventkeep
from eventkeep import (
    CheckpointConflictError,
    ConcurrencyError,
    ConfigurationError,
    EventStore,
    RawEvent,
    StreamAppend,
    ValidationError,
)


def ev(n: int = 0) -> RawEvent:
    return RawEvent("Happened", {"n": n})


def test_appends_and_a_checkpoint_commit_together(store: EventStore) -> None:
    with store.transaction() as tx:
        first = tx.append("s-1", [ev(1), ev(2)], expected_version=0)
        second = tx.append_many([StreamAppend("s-2", [ev(3)])])
        tx.save_checkpoint("reader", second[0].position, expected=None)
    assert first.versions == (1, 2)
    assert [e.position for e in store.read_all()] == [1, 2, 3]
    with store.transaction() as tx:
        assert tx.checkpoint("reader") == 3
        assert tx.checkpoint("nobody") is None
    assert store.verify().ok


def test_an_exception_rolls_back_appends_and_checkpoints(store: EventStore) -> None:
    store.append("s-1", [ev()])
    with store.transaction() as tx:
        tx.save_checkpoint("reader", 1, expected=None)

    def fail_inside() -> None:
        with store.transaction() as tx:
            tx.append("s-1", [ev(), ev()])
            tx.append("s-new", [ev()])
            tx.save_checkpoint("reader", 4, expected=1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_inside()
    assert store.head_position() == 1
    assert store.stream_version("s-1") == 1
    assert store.stream_version("s-new") == 0
    with store.transaction() as tx:
        assert tx.checkpoint("reader") == 1
    assert store.append("s-1", [ev()], expected_version=1).position == 2
    assert store.verify().ok


def test_a_checkpoint_moved_by_someone_else_is_a_conflict_and_nothing_commits(
    store: EventStore,
) -> None:
    with store.transaction() as tx:
        tx.save_checkpoint("reader", 5, expected=None)

    def move_from_the_wrong_place() -> None:
        with store.transaction() as tx:
            tx.append("s-1", [ev()])
            tx.save_checkpoint("reader", 9, expected=4)

    with pytest.raises(CheckpointConflictError):
        move_from_the_wrong_place()
    assert store.head_position() == 0
    with pytest.raises(CheckpointConflictError), store.transaction() as tx:
        tx.save_checkpoint("reader", 1, expected=None)  # it exists already


def test_a_concurrency_error_inside_undoes_only_that_call(store: EventStore) -> None:
    store.append("s-1", [ev()])
    with store.transaction() as tx:
        tx.append("s-2", [ev()])
        with pytest.raises(ConcurrencyError):
            tx.append_many([StreamAppend("s-3", [ev()]), StreamAppend("s-1", [ev()], 0)])
        tx.save_checkpoint("reader", 2, expected=None)
    assert [e.stream_id for e in store.read_all()] == ["s-1", "s-2"]
    assert store.stream_version("s-3") == 0
    assert store.verify().ok


def test_appends_in_a_transaction_are_idempotent_and_validated_like_append(
    store: EventStore,
) -> None:
    item = eventkeep.NewEvent(RawEvent("Happened", {}), __import__("uuid").uuid4())
    first = store.append("s-1", [item])
    with store.transaction() as tx:
        assert tx.append("s-1", [item]) == first
        with pytest.raises(ValidationError):
            tx.append("s-1", [])
    assert store.head_position() == 1


def test_the_transactions_thread_reads_its_appends_with_positions(store: EventStore) -> None:
    store.append("s-0", [ev()])
    with store.transaction() as tx:
        result = tx.append("s-1", [ev(1), ev(2)])
        assert result.positions == (2, 3)
        assert [e.position for e in store.read_stream("s-1")] == [2, 3]
        assert store.stream_version("s-1") == 2
        assert store.head_position() == 3
    assert [e.position for e in store.read_all()] == [1, 2, 3]


def test_a_transaction_cannot_be_used_after_its_block(store: EventStore) -> None:
    with store.transaction() as tx:
        pass
    with pytest.raises(ValidationError, match="ended"):
        tx.append("s-1", [ev()])


def test_sql_runs_in_the_transaction_on_sql_backends(sql_store: EventStore) -> None:
    with sql_store.transaction() as tx:
        tx.execute("CREATE TABLE model (k TEXT PRIMARY KEY, v INTEGER)")
        tx.execute("INSERT INTO model VALUES (?, ?)", ("a", 1))

    def conflict() -> None:
        with sql_store.transaction() as tx:
            tx.execute("INSERT INTO model VALUES (?, ?)", ("b", 2))
            tx.save_checkpoint("model", 1, expected=7)

    with pytest.raises(CheckpointConflictError):
        conflict()
    with sql_store.transaction() as tx:
        assert tx.execute("SELECT k, v FROM model ORDER BY k") == [("a", 1)]
        assert tx.connection is not None


def test_the_memory_store_has_no_sql() -> None:
    store = eventkeep.open_store("memory://")
    with store.transaction() as tx, pytest.raises(ConfigurationError):
        tx.execute("SELECT 1")


def test_other_threads_do_not_see_an_open_transaction(store: EventStore) -> None:
    inside = threading.Event()
    release = threading.Event()
    seen: list[int] = []

    def write() -> None:
        with contextlib.suppress(KeyError), store.transaction() as tx:
            tx.append("s-1", [ev()])
            inside.set()
            release.wait(10)
            raise KeyError("roll back")

    thread = threading.Thread(target=write)
    thread.start()
    assert inside.wait(10)
    reader = threading.Thread(target=lambda: seen.append(store.head_position()))
    reader.start()
    if store.url.startswith(("memory:", "sqlite:")):
        # One lock (one connection) for the whole store: the read waits for the transaction,
        # so it can only be answered after the rollback. (A chance for it to start waiting.)
        reader.join(0.2)
    else:
        # A connection of its own: the read is answered while the transaction is still open.
        reader.join(60)
        assert not reader.is_alive(), "a read waited for another thread's transaction"
    release.set()
    thread.join(10)
    reader.join(10)
    assert seen == [0]


def test_wait_for_events_wakes_on_an_append_and_times_out_without_one(
    store: EventStore,
) -> None:
    assert store.wait_for_events(0, timeout=0.05) is False
    threading.Timer(0.05, lambda: store.append("s-1", [ev()])).start()
    assert store.wait_for_events(0, timeout=10) is True
    assert store.wait_for_events(0, timeout=0) is True
