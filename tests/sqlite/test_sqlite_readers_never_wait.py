"""SQLite reads never wait for a writer: not for another thread's open transaction, not for
another OS process holding the write lock. Reads inside a transaction see its writes; reads on
other threads see them once it commits. Reader connections are closed when their thread ends
and when the store closes.

Nothing here is timed: a writer holds its transaction until the test releases it, and the test
releases it only after the reads have returned (bounded waits turn a hang into a failure).
"""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import eventkeep
from eventkeep import BackendUnavailableError, RawEvent
from eventkeep.backends.sqlite import SQLiteStore
from eventkeep.backends.sqlite.store import MAX_READERS
from eventkeep.store import Snapshot

T = TypeVar("T")

WAIT = 30.0
"""Seconds any wait of these tests may take before it fails (it normally takes milliseconds)."""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A file holding 2 events in stream "existing", a checkpoint, a record and a snapshot."""
    path = tmp_path / "readers.db"
    with SQLiteStore(path) as store:
        store.append("existing", [RawEvent("Opened", {"n": 1}), RawEvent("Credited", {"n": 2})], 0)
        with store.transaction() as tx:
            tx.save_checkpoint("proj", 1, expected=None)
            tx.save_record("proj", b'{"state":"before"}')
        store.save_snapshot("existing", 2, "State", 1, b"before")
    return path


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(db, busy_timeout=0.5) as opened:
        yield opened


def bounded(fn: Callable[[], T], what: str) -> T:
    """Run ``fn`` on a thread of its own; fail if it has not returned within ``WAIT``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:  # handed to the test thread
            outcome.append(("error", exc))

    thread = threading.Thread(target=run, name="bounded-reader", daemon=True)
    thread.start()
    thread.join(WAIT)
    if thread.is_alive():
        pytest.fail(f"{what} did not return within {WAIT}s: it waited for the writer")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def read_everything(store: SQLiteStore) -> dict[str, Any]:
    """Every kind of read the store offers, in one dict."""
    records, checkpoints = store.projection_state()
    return {
        "existing": [ev.version for ev in store.read_stream("existing")],
        "held": [ev.version for ev in store.read_stream("held")],
        "all": [(ev.stream_id, ev.version) for ev in store.read_all()],
        "held_version": store.stream_version("held"),
        "head": store.head_position(),
        "streams": [info.stream_id for info in store.list_streams()],
        "stats": (store.stats().events, store.stats().streams),
        "verify": store.verify().ok,
        "snapshot": store.load_snapshot("held"),
        "checkpoint": store.checkpoint("proj"),
        "records": records,
        "checkpoints": checkpoints,
    }


BEFORE = {
    "existing": [1, 2],
    "held": [],
    "all": [("existing", 1), ("existing", 2)],
    "held_version": 0,
    "head": 2,
    "streams": ["existing"],
    "stats": (2, 1),
    "verify": True,
    "snapshot": None,
    "checkpoint": 1,
    "records": [("proj", b'{"state":"before"}')],
    "checkpoints": {"proj": 1},
}

AFTER = {
    **BEFORE,
    "held": [1],
    "all": [("existing", 1), ("existing", 2), ("held", 1)],
    "held_version": 1,
    "head": 3,
    "streams": ["existing", "held"],
    "stats": (3, 2),
    "snapshot": Snapshot("held", 1, "State", 1, b"held", 0),
    "checkpoint": 3,
    "records": [("proj", b'{"state":"held"}')],
    "checkpoints": {"proj": 3},
}


def comparable(reads: dict[str, Any]) -> dict[str, Any]:
    snapshot = reads["snapshot"]
    if snapshot is not None:  # recorded_at is the clock's
        reads = {**reads, "snapshot": snapshot._replace(recorded_at=0)}
    return reads


def write_everything(store: SQLiteStore, tx: eventkeep.Transaction) -> None:
    """Inside ``tx``: an append, a checkpoint move, a record and a snapshot (joins ``tx``)."""
    tx.append("held", [RawEvent("Opened", {"n": 3})], 0)
    tx.save_checkpoint("proj", 3, expected=1)
    tx.save_record("proj", b'{"state":"held"}')
    store.save_snapshot("held", 1, "State", 1, b"held")


class HeldTransaction:
    """A thread that writes in a store transaction and keeps it open until released."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.holding = threading.Event()
        self.release = threading.Event()
        self.committed = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="held-transaction")

    def _run(self) -> None:
        try:
            with self.store.transaction() as tx:
                write_everything(self.store, tx)
                self.holding.set()
                if not self.release.wait(WAIT * 2):
                    raise AssertionError("never released")
            self.committed.set()
        except BaseException as exc:  # handed to the test thread
            self.errors.append(exc)
            self.holding.set()

    def __enter__(self) -> HeldTransaction:
        self.thread.start()
        assert self.holding.wait(WAIT), "the writer never opened its transaction"
        assert not self.errors, self.errors
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(WAIT * 2)
        assert not self.thread.is_alive()


def write_lock_is_held(db: Path) -> bool:
    """True when some connection holds the file's write lock (a fresh one cannot take it)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return True
    finally:
        conn.close()
    return False


# -- another thread of the same store holds a transaction -----------------------------------------


def test_every_read_returns_while_another_thread_holds_a_transaction(
    db: Path, store: SQLiteStore
) -> None:
    with HeldTransaction(store) as held:
        reads = bounded(lambda: read_everything(store), "the reads")
        # The reads have returned, and the writer still holds its transaction: it waits for
        # ``release``, which only leaving this block sets.
        assert not held.committed.is_set()
        assert held.thread.is_alive()
        assert write_lock_is_held(db)
        # ... and they did not see its uncommitted writes.
        assert comparable(reads) == BEFORE
    assert held.committed.is_set(), held.errors
    assert comparable(read_everything(store)) == AFTER


def test_reads_on_the_main_thread_return_while_a_transaction_is_held(store: SQLiteStore) -> None:
    # The same, from the thread that opened the store (its reader connection is its own too).
    with HeldTransaction(store) as held:
        assert store.head_position() == 2
        assert store.checkpoint("proj") == 1
        assert not held.committed.is_set()
    assert store.head_position() == 3
    assert store.checkpoint("proj") == 3


def test_a_read_snapshot_neither_blocks_a_writer_nor_sees_its_commit(
    store: SQLiteStore,
) -> None:
    # stats, verify and projection_state read one snapshot: what commits meanwhile (here from
    # another store object on this file) is not half seen, and is not held up by the read.
    with store._snapshot() as cur, SQLiteStore(store.path) as other:
        assert cur.execute("SELECT COUNT(*) FROM events").fetchall() == [(2,)]
        other.append("late", [RawEvent("Opened", {})], 0)
        assert cur.execute("SELECT COUNT(*) FROM events").fetchall() == [(2,)]
        assert cur.execute("SELECT COUNT(*) FROM streams").fetchall() == [(1,)]
    assert (store.stats().events, store.stats().streams) == (3, 2)


# -- inside a transaction -----------------------------------------------------------------------


def test_reads_inside_a_transaction_see_its_writes_and_other_threads_do_not(
    store: SQLiteStore,
) -> None:
    with store.transaction() as tx:
        write_everything(store, tx)
        assert comparable(read_everything(store)) == AFTER
        assert comparable(bounded(lambda: read_everything(store), "the reads")) == BEFORE
    assert comparable(bounded(lambda: read_everything(store), "the reads")) == AFTER


def test_reads_after_a_rolled_back_transaction_see_none_of_it(store: SQLiteStore) -> None:
    def undone() -> None:
        with store.transaction() as tx:
            write_everything(store, tx)
            assert store.stream_version("held") == 1
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError, match="undo"):
        undone()
    assert comparable(read_everything(store)) == BEFORE


# -- another OS process holds the write lock ----------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import pathlib, sqlite3, sys, time

    db, ready, go, done = sys.argv[1:5]
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO checkpoints (name, position, updated_at) VALUES ('other', 7, 0)"
    )
    pathlib.Path(ready).touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path(go).exists():
        if time.monotonic() > deadline:
            conn.execute("ROLLBACK")
            sys.exit(3)
        time.sleep(0.002)
    conn.execute("COMMIT")
    conn.close()
    pathlib.Path(done).touch()
    """
)


@pytest.mark.slow
def test_every_read_returns_while_another_process_holds_a_write_transaction(
    tmp_path: Path, db: Path, store: SQLiteStore
) -> None:
    ready, go, done = (tmp_path / name for name in ("ready", "go", "done"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), ready, go, done])
    try:
        deadline = time.monotonic() + WAIT
        while not ready.exists():
            assert holder.poll() is None, f"the holder exited ({holder.returncode})"
            assert time.monotonic() < deadline, "the holder never took the write lock"
            time.sleep(0.002)

        reads = bounded(lambda: read_everything(store), "the reads")
        other = bounded(lambda: store.checkpoint("other"), "the checkpoint read")
        # The reads have returned and the other process still holds its transaction: it
        # commits only once ``go`` exists.
        assert holder.poll() is None
        assert not done.exists()
        assert write_lock_is_held(db)
        assert comparable(reads) == BEFORE
        assert other is None  # its insert is not committed
        # Writers do wait for the lock (at most busy_timeout), readers did not.
        with pytest.raises(BackendUnavailableError, match="locked"):
            store.append("blocked", [RawEvent("Opened", {})], 0)

        go.touch()
        assert holder.wait(WAIT) == 0
    finally:
        go.touch()
        if holder.poll() is None:
            holder.kill()
            holder.wait(WAIT)
    assert done.exists()
    assert store.checkpoint("other") == 7
    assert store.projection_state()[1] == {"other": 7, "proj": 1}


# -- reader connections --------------------------------------------------------------------------


def reader_of_this_thread(store: SQLiteStore) -> sqlite3.Connection:
    """This thread's reader connection (reads use it whenever the writer connection is busy)."""
    conn, own = store._readers.get()
    assert not own
    assert conn is store._readers._local.reader.conn
    return conn


def is_closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def test_a_reader_connection_is_read_only(store: SQLiteStore) -> None:
    conn = reader_of_this_thread(store)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM checkpoints")
    assert store.checkpoint("proj") == 1


def test_a_thread_that_ends_closes_its_reader_connection(store: SQLiteStore) -> None:
    conns = [bounded(lambda: reader_of_this_thread(store), "a read") for _ in range(5)]
    assert len(set(map(id, conns))) == 5  # one per thread
    wait_until(lambda: len(store._readers) == 0, "the ended threads' readers to be closed")
    assert all(is_closed(conn) for conn in conns)
    assert store.head_position() == 2  # the store goes on


def test_close_closes_every_reader_connection_of_threads_still_running(db: Path) -> None:
    store = SQLiteStore(db)
    conns: list[sqlite3.Connection] = []
    opened = threading.Barrier(4)
    closed = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        conns.append(reader_of_this_thread(store))
        opened.wait(WAIT)
        assert closed.wait(WAIT)
        try:
            store.head_position()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    opened.wait(WAIT)
    mine = reader_of_this_thread(store)
    assert len(store._readers) == 4
    store.close()
    closed.set()
    for thread in threads:
        thread.join(WAIT)
    assert all(is_closed(conn) for conn in [*conns, mine])
    assert len(store._readers) == 0
    assert len(errors) == 3
    assert all(isinstance(exc, BackendUnavailableError) for exc in errors)
    with pytest.raises(BackendUnavailableError, match="closed"):
        store.head_position()
    store.close()  # twice is harmless


def test_more_reading_threads_than_kept_connections_all_read(store: SQLiteStore) -> None:
    count = MAX_READERS + 8
    together = threading.Barrier(count + 1)
    results: list[int] = []
    kept: list[int] = []

    def reader() -> None:
        together.wait(WAIT)  # every thread is alive at once
        results.append(store.head_position())
        kept.append(len(store._readers))
        together.wait(WAIT)

    # A transaction holds the writer connection, so every read goes to a reader connection.
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction():
            holding.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(WAIT)
    threads = [threading.Thread(target=reader) for _ in range(count)]
    for thread in threads:
        thread.start()
    together.wait(WAIT)
    together.wait(WAIT)
    for thread in threads:
        thread.join(WAIT)
    release.set()
    holder.join(WAIT)
    assert results == [2] * count
    assert max(kept) == MAX_READERS
    wait_until(lambda: len(store._readers) == 0, "the ended threads' readers to be closed")


def test_a_store_dropped_unclosed_closes_its_reader_connections(db: Path) -> None:
    store = SQLiteStore(db)
    conn = reader_of_this_thread(store)
    del store  # nothing else keeps it (or its readers) alive
    gc.collect()
    assert is_closed(conn)


# -- in memory: one connection ------------------------------------------------------------------


def test_an_in_memory_store_keeps_one_connection_and_sees_its_writes() -> None:
    with eventkeep.open_store("sqlite:///:memory:") as store:
        assert isinstance(store, SQLiteStore)
        store.append("a", [RawEvent("Opened", {})], 0)
        with store.transaction() as tx:
            tx.append("b", [RawEvent("Opened", {})], 0)
            tx.save_checkpoint("c", 2, expected=None)
            assert store.head_position() == 2
            assert store.checkpoint("c") == 2
            assert store.stats().events == 2
        # Another thread reads the same database (after the commit: it waits for the lock).
        assert bounded(lambda: [e.stream_id for e in store.read_all()], "a read") == ["a", "b"]
        assert bounded(store.verify, "verify").ok
        assert store.projection_state() == ([], {"c": 2})
        assert len(store._readers) == 0
