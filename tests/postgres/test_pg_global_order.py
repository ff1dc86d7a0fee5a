"""Global order on PostgreSQL, case by case: no writer waits for another stream's writer, and a
reader never skips an event, whatever order transactions commit in.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from pg_harness import SEQUENCER_LOCK_KEY, raw_connection

import eventkeep
from eventkeep import RawEvent
from eventkeep.backends.postgres import PostgresStore
from pg_fixtures import Target


def one(n: int = 0) -> list[RawEvent]:
    return [RawEvent("pg.Ordered", {"n": n})]


def test_a_writer_never_waits_for_an_open_transaction_on_another_stream(
    pg_store: PostgresStore, target: Target
) -> None:
    pg_store.append("a", one())
    holder = raw_connection(target.base_url, target.schema)
    try:
        holder.execute("BEGIN")
        # Row locks on a stream's events (the last of which is its head, migration 0018).
        holder.execute("SELECT * FROM events WHERE stream_id = 'a' FOR UPDATE")
        # The transaction stays open while other streams are written and read in full, and
        # while its own stream is appended to.
        results = [pg_store.append(f"b-{n}", one(n)) for n in range(5)]
        assert [r.position for r in results] == [2, 3, 4, 5, 6]
        assert pg_store.append("a", one(), expected_version=1).position == 7
        assert [e.stream_id for e in pg_store.read_all()] == [
            "a",
            *(f"b-{n}" for n in range(5)),
            "a",
        ]
        holder.execute("ROLLBACK")
    finally:
        holder.close()


class Rollback(Exception):
    pass


def test_a_rolled_back_transaction_leaves_no_trace_and_no_gap_in_the_log(
    pg_store: PostgresStore,
) -> None:
    def append_then_fail() -> None:
        with pg_store.transaction() as tx:
            tx.append("doomed", [*one(), *one(1)])
            raise Rollback

    with pytest.raises(Rollback):
        append_then_fail()
    pg_store.append("kept", one())
    pg_store.append("kept", one(1))
    assert [(e.stream_id, e.position) for e in pg_store.read_all()] == [("kept", 1), ("kept", 2)]
    assert pg_store.stream_version("doomed") == 0


def test_a_long_running_transaction_elsewhere_does_not_hold_readers_back(
    pg_store: PostgresStore, target: Target
) -> None:
    idle = raw_connection(target.base_url, target.schema)
    try:
        idle.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        idle.execute("SELECT count(*) FROM events")  # an old snapshot, held open
        results = [pg_store.append(f"s-{n}", one(n)) for n in range(3)]
        assert [e.position for e in pg_store.read_all()] == [r.position for r in results]
        idle.execute("ROLLBACK")
    finally:
        idle.close()


def test_stores_in_two_schemas_have_separate_sequencers(
    pg_store: PostgresStore, target: Target, request: Any
) -> None:
    other_schema = f"{target.schema}_b"
    request.addfinalizer(lambda: target.server.drop_schema(other_schema))
    admin = raw_connection(target.base_url, target.schema)
    try:
        key = admin.execute(SEQUENCER_LOCK_KEY, (target.schema,)).fetchone()[0]
        admin.execute("SELECT pg_advisory_lock(%s)", (key,))  # this store's sequencer stalls
        url = target.url.replace(f"schema={target.schema}", f"schema={other_schema}")
        with eventkeep.open_store(url) as other:
            assert other.append("x", one()).position == 1  # the other store's does not
            assert [e.stream_id for e in other.read_all()] == ["x"]
        assert [e.stream_id for e in pg_store.read_all()] == []
        admin.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        admin.close()


def test_writers_racing_for_a_new_stream_get_one_winner_and_one_conflict(
    pg_store: PostgresStore, target: Target
) -> None:
    """Both see no head; the events' primary key makes the loser wait, retry, and conflict."""
    outcomes: list[Any] = []
    barrier = threading.Barrier(4)

    def create(n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(pg_store.append("new", one(n), expected_version=0))
        except eventkeep.ConcurrencyError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [o for o in outcomes if isinstance(o, eventkeep.AppendResult)]
    assert len(winners) == 1
    assert len(outcomes) == 4
    assert all(o.actual == 1 for o in outcomes if isinstance(o, eventkeep.ConcurrencyError))
    assert pg_store.stream_version("new") == 1


def test_a_read_only_role_reads_the_log_and_waits_for_events(
    pg_store: PostgresStore, target: Target
) -> None:
    role = f"ek_reader_{target.schema}"
    admin = raw_connection(target.base_url, target.schema)
    try:
        try:
            admin.execute(f"CREATE ROLE {role} NOLOGIN")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("needs a user that may create roles")
        admin.execute(f"GRANT USAGE ON SCHEMA {target.schema} TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {target.schema} TO {role}")
        pg_store.append("numbered", one())
        reader_url = f"{target.url}&options=-c%20role%3D{role}"
        with eventkeep.open_store(reader_url) as reader:
            assert [e.stream_id for e in reader.read_all()] == ["numbered"]
            assert reader.head_position() == 1
            assert [e.version for e in reader.read_stream("numbered")] == [1]
            assert reader.stats().events == 1
            assert reader.verify().ok
            assert not reader.wait_for_events(1, timeout=0.2)
            pg_store.append("numbered", one(1))
            assert reader.wait_for_events(1, timeout=60)
    finally:
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()
