"""``wait_for_events``: LISTEN/NOTIFY wakes a waiting reader; a bounded poll covers a lost
notification or a dead listening connection, so a reader is never stalled.

No timing is asserted: every wait has a generous timeout and the tests check only that the wait
ended with the right answer.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from pg_harness import raw_connection, wait_until

import eventkeep
from eventkeep import RawEvent
from eventkeep.backends.postgres import PostgresStore
from pg_fixtures import Target


def one() -> list[RawEvent]:
    return [RawEvent("pg.Woken", {})]


def test_it_returns_at_once_when_events_beyond_the_position_exist(pg_store: PostgresStore) -> None:
    pg_store.append("s", one())
    assert pg_store.wait_for_events(0, timeout=30)


def test_it_returns_false_when_nothing_arrives_before_the_timeout(pg_store: PostgresStore) -> None:
    pg_store.append("s", one())
    assert not pg_store.wait_for_events(1, timeout=0.2)


def test_an_append_from_another_store_wakes_a_waiting_reader(
    pg_store: PostgresStore, target: Target
) -> None:
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(pg_store.wait_for_events(0, 60)))
    waiter.start()
    admin = raw_connection(target.base_url, target.schema)
    try:
        wait_until(
            lambda: admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LISTEN%%'"
            ).fetchone(),
            "the reader to listen",
        )
    finally:
        admin.close()
    with eventkeep.open_store(target.url) as writer:
        writer.append("s", one())
    waiter.join(timeout=60)
    assert woke == [True]


def test_a_reader_whose_listening_connection_dies_still_finds_new_events(
    target: Target,
) -> None:
    with eventkeep.open_store(target.url, poll_interval=0.1) as reader:
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(reader.wait_for_events(0, 60)))
        waiter.start()
        admin = raw_connection(target.base_url, target.schema)
        try:
            pid = wait_until(
                lambda: admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%%'"
                ).fetchone(),
                "the reader to listen",
            )[0]
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        finally:
            admin.close()
        with eventkeep.open_store(target.url) as writer:
            writer.append("s", one())
        waiter.join(timeout=60)
        assert woke == [True]
        # ... and the next wait listens again on a fresh connection.
        assert not reader.wait_for_events(1, timeout=0.2)


def test_a_notification_that_never_comes_costs_at_most_a_poll(
    target: Target, pg_store: PostgresStore
) -> None:
    """Events committed without a notification (written by raw SQL here) are found by the
    waiter's own poll of the head."""
    woke: list[bool] = []
    with eventkeep.open_store(target.url, poll_interval=0.1) as reader:
        silent = raw_connection(target.base_url, target.schema)
        try:
            silent.execute(SILENT_INSERT)
        finally:
            silent.close()
        woke.append(reader.wait_for_events(0, timeout=60))
    assert woke == [True]


SILENT_INSERT = (
    "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
    "recorded_at, data_bytes, metadata_bytes, hash) VALUES (1, 'silent', 1, gen_random_uuid(), "
    "'pg.Silent', 1, now(), '{}', '{}', '\\x00')"
)


@pytest.mark.parametrize(("after", "timeout"), [(-1, 0), ("0", 0), (None, 0), (0, -1), (0, "1")])
def test_a_bad_position_or_timeout_is_a_validation_error(
    pg_store: PostgresStore, after: Any, timeout: Any
) -> None:
    with pytest.raises(eventkeep.ValidationError):
        pg_store.wait_for_events(after, timeout=timeout)


def test_twenty_short_lived_waiting_threads_share_one_listening_connection(
    target: Target,
) -> None:
    app = "eventkeep_listen_leak"
    with (
        eventkeep.open_store(
            f"{target.url}&application_name={app}", pool_min_size=1, pool_max_size=2
        ) as store,
        psycopg.connect(target.base_url, autocommit=True) as admin,
    ):

        def wait_briefly() -> None:
            store.wait_for_events(store.head_position() + 10, timeout=0.05)

        for _ in range(20):
            thread = threading.Thread(target=wait_briefly)
            thread.start()
            thread.join(timeout=60)
            assert not thread.is_alive()
        count = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()
        assert count is not None
        # At most the pool (2) and the one listening connection.
        assert count[0] <= 3, count
