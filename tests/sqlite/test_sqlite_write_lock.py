"""SQLite's write lock: held by another OS process, writers wait or fail cleanly and readers go
on; a write that fails at COMMIT never keeps it."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_harness import Workers

import eventkeep
from eventkeep import AppendResult, BackendUnavailableError, EventStore, RawEvent

EVENTS = [RawEvent("Opened", {"n": 1}), RawEvent("Credited", {"n": 2})]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "locked.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        store.append("existing", [RawEvent("Happened", {"n": 0})], 0)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[EventStore]:
    with eventkeep.open_store(f"sqlite:///{db}?busy_timeout=0.2") as opened:
        yield opened


def lock(workers: Workers, db: Path) -> subprocess.Popen[bytes]:
    holder = workers.start("hold-lock", db, stdin=True)
    assert workers.readline(holder) == "locked"
    return holder


def release(workers: Workers, holder: subprocess.Popen[bytes]) -> None:
    assert holder.stdin is not None
    holder.stdin.write(b"release\n")
    holder.stdin.flush()
    assert workers.readline(holder) == "released"
    workers.finish(holder, timeout=30)


def event_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
def test_an_append_fails_cleanly_while_another_process_holds_the_lock_then_succeeds(
    db: Path, store: EventStore, workers: Workers
) -> None:
    holder = lock(workers, db)
    with pytest.raises(BackendUnavailableError, match="locked") as caught:
        store.append("account-1", EVENTS, expected_version=0)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert not store._conn.in_transaction  # type: ignore[attr-defined]
    assert store.stream_version("account-1") == 0
    assert event_count(db) == 1

    release(workers, holder)
    result = store.append("account-1", EVENTS, expected_version=0)
    assert result == AppendResult("account-1", (1, 2), (2, 3))
    assert [ev.data["n"] for ev in store.read_stream("account-1")] == [1, 2]
    assert store.verify().ok


@pytest.mark.slow
def test_readers_are_not_blocked_by_a_held_write_lock(
    db: Path, store: EventStore, workers: Workers
) -> None:
    holder = lock(workers, db)
    assert [ev.stream_id for ev in store.read_all()] == ["existing"]
    assert [ev.version for ev in store.read_stream("existing")] == [1]
    assert store.stream_version("existing") == 1
    assert store.stats().events == 1
    assert store.verify().ok
    # Opening a store on an up-to-date file reads its schema version without the write lock.
    with eventkeep.open_store(f"sqlite:///{db}?busy_timeout=0.2") as reader:
        assert reader.head_position() == 1
        assert [info.stream_id for info in reader.list_streams()] == ["existing"]
    release(workers, holder)


@pytest.mark.slow
def test_a_writer_with_a_long_busy_timeout_waits_for_the_lock_instead_of_failing(
    db: Path, workers: Workers
) -> None:
    patient = eventkeep.open_store(f"sqlite:///{db}?busy_timeout=30")
    outcome: list[AppendResult | BaseException] = []
    begun = threading.Event()

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN"):
            begun.set()

    def append() -> None:
        try:
            outcome.append(patient.append("account-2", EVENTS, expected_version=0))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    holder = lock(workers, db)
    # Called as each statement starts, before SQLite waits for the lock inside it.
    patient._conn.set_trace_callback(trace)  # type: ignore[attr-defined]
    writer = threading.Thread(target=append)
    writer.start()
    # The append has begun its write transaction while the other process holds the lock, so
    # it cannot be done unless it failed (it is waiting for the lock, however long it takes
    # the test to get here) ...
    assert begun.wait(30), "the append never began its write transaction"
    assert event_count(db) == 1
    release(workers, holder)
    # ... and it succeeds once the lock is released: it waited instead of failing.
    writer.join(timeout=30)
    assert not writer.is_alive()
    patient._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    assert outcome == [AppendResult("account-2", (1, 2), (2, 3))]
    patient.close()


def test_a_failed_commit_rolls_back_and_releases_the_lock(db: Path, store: EventStore) -> None:
    # Make SQLite itself fail the COMMIT: interrupt the statement from its progress handler.
    conn = store._conn  # type: ignore[attr-defined]
    committing = False

    def trace(statement: str) -> None:
        nonlocal committing
        committing = statement == "COMMIT"

    conn.set_trace_callback(trace)
    conn.set_progress_handler(lambda: int(committing), 1)
    with pytest.raises(BackendUnavailableError, match="interrupted"):
        store.append("account-3", EVENTS, expected_version=0)
    conn.set_progress_handler(None, 1)
    conn.set_trace_callback(None)

    assert not conn.in_transaction
    assert store.stream_version("account-3") == 0  # not even visible to the failed store
    assert event_count(db) == 1
    other = sqlite3.connect(db, isolation_level=None, timeout=0.2)
    try:
        other.execute("BEGIN IMMEDIATE")  # the write lock was released
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert store.append("account-3", EVENTS, expected_version=0).versions == (1, 2)
