"""Group commit (migration 0017, ``durable.py``): concurrent appends share WAL flushes, and no
reader ever returns an event that a server crash could take back.

An append's own transaction commits asynchronously (its commit record in the WAL buffers, the
sequencer's lock released at once) and the append is acknowledged after a second, synchronous
commit that flushes the WAL past it. In between, the event is visible but not durable: these
tests stop an append right there, read, and crash the server.

The crash: a SIGKILL of one server backend makes the postmaster end every other backend and
reinitialize shared memory, so WAL still in its buffers is lost; the WAL writer, which would
write it out on its own, runs only every ``wal_writer_delay`` (10 s, the longest PostgreSQL
allows, on this test's cluster).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_harness import Workers, check_acknowledged, raw_connection, wait_until

import eventkeep
from eventkeep import BackendUnavailableError, ConfigurationError, RawEvent
from eventkeep.backends.postgres import plans, writer
from eventkeep.backends.postgres.durable import Durable
from pg_cluster import Cluster, start_cluster
from pg_fixtures import Target, new_schema_name, with_schema

pytestmark = pytest.mark.slow

WRITERS = [f"writer-{n}" for n in range(8)]


@pytest.fixture(scope="module")
def slow_wal_writer() -> Iterator[Cluster]:
    """A cluster whose WAL writer writes (and flushes) asynchronous commits only every 10 s."""
    cluster = start_cluster(settings={"wal_writer_delay": "10s"})
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def durable_cluster() -> Iterator[Cluster]:
    """A cluster with fsync on: ``pg_stat_wal.wal_sync`` counts its WAL flushes (with fsync
    off, the test clusters' default, there are none to count)."""
    cluster = start_cluster(durable=True)
    try:
        yield cluster
    finally:
        cluster.destroy()


class PausedFlush:
    """Stops this process's appends between their two commits: ``writer.run`` holds before it
    sends ``eventkeep_flush_wal()`` until ``release()`` (the client is what pauses; the server
    is real and untouched)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()
        original = writer._do

        def paused(conn: psycopg.Connection[Any], op: plans.Op) -> Any:
            if isinstance(op, plans.Run) and op.statement == plans.sql.FLUSH_WAL:
                self.reached.set()
                assert self.released.wait(60), "the test never released the paused flush"
            return original(conn, op)

        monkeypatch.setattr(writer, "_do", paused)

    def release(self) -> None:
        self.released.set()


def _crash(cluster: Cluster) -> None:
    """SIGKILL one backend: the postmaster ends every other backend, reinitializes shared
    memory and recovers from the WAL that reached the kernel. Returns once another session
    has been ended by that and the server accepts connections again."""
    with psycopg.connect(cluster.url, autocommit=True) as witness:
        with psycopg.connect(cluster.url, autocommit=True) as victim:
            row = victim.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            os.kill(int(row[0]), signal.SIGKILL)
        wait_until(lambda: not _alive(witness), "the postmaster to end the other sessions")
    wait_until(_accepting(cluster), "the server to recover", timeout=60)


def _alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    time.sleep(0.02)
    return True


def _accepting(cluster: Cluster) -> Any:
    def accepting() -> bool:
        try:
            with psycopg.connect(cluster.url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            time.sleep(0.05)
            return False
        return True

    return accepting


def _holding_the_sequencer(cluster: Cluster, schema: str) -> psycopg.Connection[Any]:
    conn = raw_connection(cluster.url, schema)
    conn.execute("BEGIN")
    conn.execute("SELECT eventkeep_sequencer_lock()")
    return conn


def _waiting_for_the_sequencer(holder: psycopg.Connection[Any]) -> bool:
    row = holder.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    ).fetchone()
    return row is not None and row[0] == 1


def _stored(cluster: Cluster, schema: str) -> dict[int, str]:
    conn = raw_connection(cluster.url, schema)
    try:
        rows = conn.execute("SELECT position, event_id::text FROM events").fetchall()
    finally:
        conn.close()
    return {int(p): str(e) for p, e in rows}


def test_no_event_a_reader_returned_is_lost_or_renumbered_when_the_server_crashes_mid_append(
    slow_wal_writer: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = slow_wal_writer
    url = with_schema(cluster.url, new_schema_name())
    store = eventkeep.open_store(url)
    reader = eventkeep.open_store(url)
    try:
        acknowledged = store.append("acct-1", [RawEvent("t.Opened", {"n": 0})])
        paused = PausedFlush(monkeypatch)
        failure: list[BaseException] = []

        def append() -> None:
            try:
                store.append("acct-1", [RawEvent("t.Deposited", {"n": 1})], expected_version=1)
            except BaseException as exc:  # the crash ends its connection: outcome unknown
                failure.append(exc)

        # Another append holds the sequencer's lock (a transaction of another session that
        # numbered an event): this append waits for it, so it commits asynchronously.
        holder = _holding_the_sequencer(cluster, store.schema)  # type: ignore[attr-defined]
        thread = threading.Thread(target=append)
        thread.start()
        wait_until(lambda: _waiting_for_the_sequencer(holder), "the append to wait for the lock")
        holder.execute("ROLLBACK")
        holder.close()
        assert paused.reached.wait(30)
        # Committed (asynchronously), not flushed: another store object reads it.
        seen = {e.position: str(e.event_id) for e in reader.read_all()}
        head = reader.head_position()
        assert sorted(seen) == [1, 2]
        assert head == 2
        _crash(cluster)
        paused.release()
        thread.join(60)
        assert len(failure) == 1
        assert isinstance(failure[0], BackendUnavailableError)
        assert failure[0].outcome_unknown

        stored = _stored(cluster, store.schema)  # type: ignore[attr-defined]
        assert {p: stored.get(p) for p in seen} == seen  # nothing the reader returned is lost
        assert acknowledged.position in stored
        # Positions the reader saw are never given to other events.
        later = store.append("acct-2", [RawEvent("t.Opened", {"n": 2})])
        assert later.position == 3
        stored = _stored(cluster, store.schema)  # type: ignore[attr-defined]
        assert {p: stored[p] for p in seen} == seen
        assert [e.position for e in reader.read_all()] == [1, 2, 3]
    finally:
        store.close()
        reader.close()


def test_an_acknowledged_append_and_a_committed_store_transaction_survive_an_immediate_crash(
    slow_wal_writer: Cluster,
) -> None:
    cluster = slow_wal_writer
    url = with_schema(cluster.url, new_schema_name())
    with eventkeep.open_store(url) as store:
        appended = store.append("acct-1", [RawEvent("t.Opened", {"n": 0})])
        with store.transaction() as tx:
            in_transaction = tx.append("acct-2", [RawEvent("t.Opened", {"n": 1})])
        schema = store.schema  # type: ignore[attr-defined]
    _crash(cluster)
    stored = _stored(cluster, schema)
    assert sorted(stored) == [appended.position, in_transaction.position]


def test_appends_that_waited_for_the_lock_in_a_store_transaction_and_an_import_commit_durably(
    slow_wal_writer: Cluster,
) -> None:
    cluster = slow_wal_writer
    url = with_schema(cluster.url, new_schema_name())
    with eventkeep.open_store(url) as store, eventkeep.open_store("memory://") as source:
        source.append("imported-1", [RawEvent("t.Opened", {"n": 9})])
        schema = store.schema  # type: ignore[attr-defined]
        done: list[Any] = []

        def in_transaction() -> None:
            with store.transaction() as tx:
                done.append(tx.append("acct-1", [RawEvent("t.Opened", {"n": 0})]))

        def imported() -> None:
            done.append(store.import_(source.export()))

        for work, stored in ((imported, [1]), (in_transaction, [1, 2])):  # the import's is older
            holder = _holding_the_sequencer(cluster, schema)
            thread = threading.Thread(target=work)
            thread.start()
            wait_until(lambda h=holder: _waiting_for_the_sequencer(h), "the wait for the lock")
            holder.execute("ROLLBACK")
            holder.close()
            thread.join(60)
            _crash(cluster)  # at once: nothing but its own commit could have flushed it
            assert sorted(_stored(cluster, schema)) == stored
        assert len(done) == 2


def test_without_group_commit_an_append_sends_no_flush_and_survives_an_immediate_crash(
    slow_wal_writer: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = with_schema(slow_wal_writer.url, new_schema_name()) + "&group_commit=off"
    flushes = []
    original = writer._do

    def counted(conn: psycopg.Connection[Any], op: plans.Op) -> Any:
        if isinstance(op, plans.Run) and op.statement == plans.sql.FLUSH_WAL:
            flushes.append(op)
        return original(conn, op)

    monkeypatch.setattr(writer, "_do", counted)
    with eventkeep.open_store(url) as store:
        appended = store.append("acct-1", [RawEvent("t.Opened", {"n": 0})])
        assert [e.position for e in store.read_all()] == [appended.position]
        schema = store.schema  # type: ignore[attr-defined]
    assert flushes == []  # its own commit was synchronous
    _crash(slow_wal_writer)
    assert list(_stored(slow_wal_writer, schema)) == [appended.position]


def test_eight_concurrent_writers_share_wal_flushes(
    durable_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = durable_cluster
    schema = new_schema_name()
    url = with_schema(cluster.url, schema)
    with eventkeep.open_store(url):
        pass
    workers = Workers(tmp_path, url)
    try:
        for n, name in enumerate(WRITERS):
            streams = f"{name}-a,{name}-b"
            workers.spawn(
                "writer", name, "--streams", streams, "--appends", "150", "--seed", str(n)
            )
        workers.all_ready(WRITERS)
        before = _wal_syncs(cluster)
        workers.go()
        results = workers.finish(WRITERS)
    finally:
        workers.kill_all()
    syncs = _wal_syncs(cluster, settled=True) - before
    appends = sum(len(r) for r in results.values())
    assert appends == 8 * 150
    assert syncs < appends, f"{syncs} WAL flushes for {appends} appends: none shared"
    with eventkeep.open_store(url) as store:
        log = list(store.read_all())
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    check_acknowledged(log, (a for r in results.values() for a in r))


def _wal_syncs(cluster: Cluster, settled: bool = False) -> int:
    """The server's WAL flushes so far; ``settled``: once every other client backend has ended
    (a backend reports its counts when it ends)."""
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        if settled:
            wait_until(
                lambda: conn.execute(
                    "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = "
                    "'client backend' AND pid <> pg_backend_pid()"
                ).fetchone()[0],  # type: ignore[index]
                "the writers' backends to end",
            )
        row = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
    return int(row[0]) if row else 0


def test_group_commit_is_an_option_of_the_url_and_of_open_store(target: Target) -> None:
    for url, options, expected in (
        (target.url, {}, True),
        (target.url + "&group_commit=off", {}, False),
        (target.url + "&group_commit=on", {}, True),
        (target.url, {"group_commit": False}, False),
    ):
        with eventkeep.open_store(url, **options) as store:
            assert store._db.group_commit is expected  # type: ignore[attr-defined]
            with store._db.connection() as conn:  # type: ignore[attr-defined]
                row = conn.execute("SHOW eventkeep.group_commit").fetchone()
            assert row == ("on" if expected else "off",)
    with pytest.raises(ConfigurationError, match="group_commit='maybe' must be on or off"):
        eventkeep.open_store(target.url + "&group_commit=maybe")
    with pytest.raises(ConfigurationError, match="group_commit must be True or False"):
        eventkeep.open_store(target.url, group_commit="yes")


def test_an_append_that_gets_the_lock_at_once_commits_synchronously_and_sends_no_flush(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    original = writer._do

    def do(conn: psycopg.Connection[Any], op: plans.Op) -> Any:
        if isinstance(op, plans.Run):
            statements.append(str(op.statement))
        return original(conn, op)

    monkeypatch.setattr(writer, "_do", do)
    with eventkeep.open_store(target.url) as store:
        store.append("acct-1", [RawEvent("t.Opened", {"n": 0})])
        statements.clear()
        appended = store.append("acct-1", [RawEvent("t.Deposited", {"n": 1})], expected_version=1)
        assert len(statements) == 1  # the insert (heads known), committed synchronously
        assert plans.sql.FLUSH_WAL not in statements
        # Its own appends are known flushed: reading them back costs no flush.
        reading = _count_flushes_on_reads(store, monkeypatch)
        assert [e.position for e in store.read_all()] == [1, appended.position]
        assert store.head_position() == appended.position
        assert reading == []


def _count_flushes_on_reads(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The flushes ``store``'s reads make from now on (the top position each one covers)."""
    flushed: list[int] = []
    original = Durable.flush

    def flush(self: Durable, conn: psycopg.Connection[Any], top: int = 0) -> int:
        if self is store._durable:
            flushed.append(top)
        return original(self, conn, top)

    monkeypatch.setattr(Durable, "flush", flush)
    return flushed


def test_a_reader_flushes_once_for_what_others_wrote_and_not_again_behind_the_head(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with eventkeep.open_store(target.url) as store, eventkeep.open_store(target.url) as reader:
        for n in range(30):
            store.append(f"acct-{n}", [RawEvent("t.Opened", {"n": n})])
        flushed = _count_flushes_on_reads(reader, monkeypatch)
        pages = [
            [e.position for e in reader.read_all(after=after, limit=10)]
            for after in (0, 10, 20, 30)
        ]
        assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 31)), []]
        assert flushed == [10]  # the first page: then the head (30) is known flushed
        store.append("acct-x", [RawEvent("t.Opened", {"n": 30})])
        assert reader.head_position() == 31
        assert flushed == [10, 31]
