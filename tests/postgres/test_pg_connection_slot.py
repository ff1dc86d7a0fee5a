"""The store's slot: one pooled connection kept out of the pool for the next lease that finds it
free (``backends/postgres/leases.py``). It never makes a thread wait while it sits idle, it
is checked like a pooled connection before each lease, and closing the store lets it go."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pg_harness import raw_connection, wait_until

import eventkeep
from eventkeep import NewEvent, RawEvent
from eventkeep.backends.postgres import PostgresStore
from pg_fixtures import Target


def event() -> list[NewEvent]:
    return [NewEvent(RawEvent("pg.Slot", {}), event_id=uuid.uuid4())]


@pytest.fixture
def admin(target: Target, pg_store: PostgresStore) -> Iterator[psycopg.Connection[Any]]:
    conn = raw_connection(target.base_url, target.schema)
    yield conn
    conn.close()


def backends(admin: psycopg.Connection[Any], application: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
        (application,),
    ).fetchall()
    return [row[0] for row in rows]


def slot_pid(store: PostgresStore) -> int | None:
    conn = store._db._slot.conn
    return None if conn is None else conn.info.backend_pid


def version_on_a_thread(
    store: PostgresStore, stream: str
) -> tuple[threading.Thread, dict[str, Any]]:
    """A thread reading ``stream``'s version, started; its outcome ("version" or "error")."""
    outcome: dict[str, Any] = {}

    def read() -> None:
        try:
            outcome["version"] = store.stream_version(stream)
        except BaseException as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, outcome


def finished(reader: threading.Thread, outcome: dict[str, Any]) -> dict[str, Any]:
    """The reader's outcome, once it has ended (it must, within a minute)."""
    reader.join(timeout=60)
    assert not reader.is_alive()
    return outcome


def test_the_slot_keeps_its_connection_between_calls_out_of_the_pool(target: Target) -> None:
    # Nobody waiting (the slot's own count): the connection stays in the slot, call after call.
    with eventkeep.open_store(f"{target.url}&pool_min_size=2") as store:
        assert isinstance(store, PostgresStore)
        store.append("kept", event())
        first = slot_pid(store)
        assert first is not None
        for n in range(5):
            assert store.stream_version("kept") == 1 + n
            store.append("kept", event(), expected_version=1 + n)
            assert slot_pid(store) == first
        pool = store._db._pool

        def all_but_the_slots_idle() -> bool | None:
            # The pool may still be connecting one it grew by (pool_size counts it already).
            stats = pool.get_stats()
            return stats["pool_available"] == stats["pool_size"] - 1 or None

        wait_until(all_but_the_slots_idle, "every connection but the slot's to be idle")
        assert slot_pid(store) == first


def test_a_thread_waiting_in_the_pool_gets_the_connection_when_the_slots_lease_ends(
    target: Target,
) -> None:
    # One connection in all: the slot holds it, and a second thread must wait in the pool.
    # When the lease on the slot ends, the connection goes to that thread (else it would wait
    # out the whole pool_timeout while the connection sat idle in the slot, and fail).
    url = f"{target.url}&pool_min_size=1&pool_max_size=1&pool_timeout=30"
    with eventkeep.open_store(url) as store:
        assert isinstance(store, PostgresStore)
        store.append("waits", event())
        with store.transaction() as tx:  # holds the slot's lease
            tx.append("waits", event(), expected_version=1)
            reader, outcome = version_on_a_thread(store, "waits")
            wait_until(
                lambda: store._db._pool.get_stats().get("requests_waiting", 0) >= 1 or None,
                "the reader to wait in the pool",
            )
        assert finished(reader, outcome) == {"version": 2}


def test_a_thread_that_found_the_slot_in_use_gets_it_even_if_it_asks_the_pool_late(
    target: Target,
) -> None:
    # The race a look at the pool's queue had: a thread finds the slot in use, and before it
    # joins the pool's queue the slot's lease ends and keeps the connection (nobody queued
    # yet). With one connection in all it would then wait out pool_timeout and fail. Here
    # the thread is held between the two steps (its getconn waits for an event) while the
    # slot's lease ends: the slot must have counted it, and given its connection to the pool.
    url = f"{target.url}&pool_min_size=1&pool_max_size=1&pool_timeout=5"
    with eventkeep.open_store(url) as store:
        assert isinstance(store, PostgresStore)
        store.append("late", event())
        pool = store._db._pool
        getconn = pool.getconn
        asking, go = threading.Event(), threading.Event()

        def late_getconn(*args: Any, **kwargs: Any) -> Any:
            asking.set()
            go.wait(60)
            return getconn(*args, **kwargs)

        with store.transaction() as tx:  # holds the slot's lease
            tx.append("late", event(), expected_version=1)
            pool.getconn = late_getconn  # type: ignore[method-assign]
            reader, outcome = version_on_a_thread(store, "late")
            assert asking.wait(60)
        go.set()  # the lease has ended; only now does the reader ask the pool
        assert finished(reader, outcome) == {"version": 2}
        pool.getconn = getconn  # type: ignore[method-assign]
        store.append("late", event(), expected_version=2)
        assert store._db._slot.wanting == 0


def test_the_slots_connection_killed_while_idle_is_replaced_before_the_next_call(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    url = f"{target.url}&application_name=slot_killed&pool_min_size=1&pool_max_size=4"
    with eventkeep.open_store(url) as store:
        assert isinstance(store, PostgresStore)
        store.append("killed", event())
        killed = slot_pid(store)
        assert killed is not None
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (killed,))
        assert store.stream_version("killed") == 1  # no error: checked before the lease
        store.append("killed", event(), expected_version=1)
        assert slot_pid(store) not in (None, killed)
        assert killed not in backends(admin, "slot_killed")


def test_closing_the_store_closes_the_slots_connection(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    url = f"{target.url}&application_name=slot_closed&pool_min_size=1"
    store = eventkeep.open_store(url)
    assert isinstance(store, PostgresStore)
    store.append("closed", event())
    assert slot_pid(store) in backends(admin, "slot_closed")
    store.close()
    assert store._db._slot.conn is None
    wait_until(
        lambda: backends(admin, "slot_closed") == [] or None,
        "the store's connections to end",
    )


def test_a_lease_inside_a_lease_on_one_thread_takes_a_pooled_connection(target: Target) -> None:
    with eventkeep.open_store(target.url) as store:
        assert isinstance(store, PostgresStore)
        db = store._db
        with db.connection() as outer, db.connection() as inner:
            assert outer is not inner
            assert outer is db._slot.conn
            assert outer.info.backend_pid != inner.info.backend_pid


def test_more_threads_than_connections_all_get_through(target: Target) -> None:
    url = f"{target.url}&pool_min_size=1&pool_max_size=2&pool_timeout=30"
    threads, appends = 6, 40
    with eventkeep.open_store(url) as store:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for k in range(appends):
                    store.append(f"busy-{n}", event(), expected_version=k)
                    assert store.stream_version(f"busy-{n}") == k + 1
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not any(worker.is_alive() for worker in workers)
        assert errors == []
        assert sum(1 for _ in store.read_all()) == threads * appends
