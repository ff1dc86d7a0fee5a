"""Faults on PostgreSQL: connections lost mid-append, an exhausted pool, an unreachable server,
bad configuration, a schema from the future and a missing driver all give clear eventkeep errors;
a retried append with the same event ids is stored exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from pg_harness import SEQUENCER_LOCK_KEY, raw_connection, wait_until

import eventkeep
from eventkeep import (
    BackendUnavailableError,
    ConfigurationError,
    NewEvent,
    RawEvent,
    SchemaVersionError,
)
from eventkeep.backends.postgres import PostgresStore
from pg_cluster import free_port
from pg_fixtures import Target


def events_with_ids(*ids: uuid.UUID) -> list[NewEvent]:
    return [NewEvent(RawEvent("pg.Fault", {"n": n}), event_id=i) for n, i in enumerate(ids)]


class Background:
    """Runs a call in a thread and keeps its result or exception."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the background call never returned"


@pytest.fixture
def admin(target: Target, pg_store: PostgresStore) -> Iterator[psycopg.Connection[Any]]:
    conn = raw_connection(target.base_url, target.schema)
    yield conn
    conn.close()


def backend_waiting_on(admin: psycopg.Connection[Any], application: str, event: str) -> int:
    row = wait_until(
        lambda: admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event = %s",
            (application, event),
        ).fetchone(),
        f"the store's connection to wait on a {event} lock",
    )
    return int(row[0])


def test_a_connection_lost_mid_append_raises_backend_unavailable_and_a_retry_stores_once(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    with eventkeep.open_store(f"{target.url}&application_name=lost_mid_append") as store:
        store.append("account-1", events_with_ids(uuid.uuid4()), expected_version=0)
        ids = (uuid.uuid4(), uuid.uuid4())
        # Hold the sequencer's lock so the append stops inside its write statement, then cut
        # its connection there.
        admin.execute("BEGIN")
        admin.execute("SELECT eventkeep_sequencer_lock()")
        call = Background(lambda: store.append("account-1", events_with_ids(*ids), 1))
        backend = backend_waiting_on(admin, "lost_mid_append", "advisory")
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        call.join()
        admin.execute("ROLLBACK")
        assert isinstance(call.error, BackendUnavailableError)
        assert "retrying it with the same event ids is safe" in str(call.error)

        first = store.append("account-1", events_with_ids(*ids), expected_version=1)
        again = store.append("account-1", events_with_ids(*ids), expected_version=1)
        assert first == again
        assert first.versions == (2, 3)
        assert [e.event_id for e in store.read_stream("account-1")][1:] == list(ids)
        assert store.verify().ok


def test_pooled_connections_killed_while_idle_are_replaced_at_checkout_without_an_error(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    # The server ends idle sessions (a restart, an administrator, an idle-session timeout):
    # the pool's checkout check sees the dead socket and hands out a fresh connection, so no
    # caller gets an error for a connection that died while nobody used it.
    url = f"{target.url}&application_name=killed_idle&pool_min_size=3"
    with eventkeep.open_store(url) as store:
        store.append("idle-1", events_with_ids(uuid.uuid4()))
        idle = wait_until(
            lambda: (
                [
                    row[0]
                    for row in admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = 'killed_idle'"
                        " AND state = 'idle'"
                    ).fetchall()
                ]
                or None
            ),
            "the store's idle pooled connections",
        )
        for pid in idle:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        for n in range(5):  # every connection the pool held died; none of these calls fails
            assert store.stream_version("idle-1") == 1 + n
            store.append("idle-1", events_with_ids(uuid.uuid4()), expected_version=1 + n)
        assert len(list(store.read_stream("idle-1"))) == 6


def test_a_connection_lost_while_waiting_for_the_sequencer_stores_nothing_and_the_retry_once(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    with eventkeep.open_store(f"{target.url}&application_name=lost_in_sequencer") as store:
        ids = (uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
        key = admin.execute(SEQUENCER_LOCK_KEY, (target.schema,)).fetchone()[0]
        admin.execute("SELECT pg_advisory_lock(%s)", (key,))
        call = Background(lambda: store.append("account-2", events_with_ids(*ids), 0))
        backend = backend_waiting_on(admin, "lost_in_sequencer", "advisory")
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        call.join()
        assert isinstance(call.error, BackendUnavailableError)
        stored = admin.execute("SELECT count(*) FROM events").fetchone()
        assert stored == (0,), "the append's one transaction rolled back: nothing is stored"
        admin.execute("SELECT pg_advisory_unlock(%s)", (key,))

        retried = store.append("account-2", events_with_ids(*ids), expected_version=0)
        assert retried.versions == (1, 2, 3)
        log = list(store.read_all())
        assert [e.event_id for e in log] == list(ids)
        assert [e.position for e in log] == list(retried.positions)
        assert store.verify().ok


def test_an_exhausted_pool_times_out_with_a_clear_error(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    with eventkeep.open_store(
        target.url, pool_min_size=1, pool_max_size=1, pool_timeout=0.3
    ) as store:
        store.append("busy", events_with_ids(uuid.uuid4()))
        admin.execute("BEGIN")
        admin.execute("SELECT eventkeep_sequencer_lock()")
        stuck = Background(lambda: store.append("busy", events_with_ids(uuid.uuid4())))
        wait_until(
            lambda: admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory'"
            ).fetchone(),
            "the append to hold the pool's only connection",
        )
        with pytest.raises(BackendUnavailableError, match=r"pool_timeout=0\.3s.*pool_max_size"):
            store.stream_version("other")
        admin.execute("ROLLBACK")
        stuck.join()
        assert stuck.error is None
        assert store.stream_version("busy") == 2


def test_an_unreachable_server_gives_backend_unavailable() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1"):
        eventkeep.open_store(url, connect_timeout=2)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"schema": "Bad-Name"}, "schema must be"),
        ({"schema": "pg_catalog"}, "reserved"),
        ({"pool_max_size": 0}, "pool_max_size"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"no_such_libpq_option": "1"}, "no_such_libpq_option"),
    ],
)
def test_bad_options_are_configuration_errors(
    target: Target, option: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        eventkeep.open_store(target.url, **option)


def test_a_schema_written_by_a_newer_eventkeep_is_refused(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("INSERT INTO eventkeep_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(SchemaVersionError, match="999"):
        eventkeep.open_store(target.url)


def test_migrations_are_recorded_and_reopening_runs_none(
    target: Target, admin: psycopg.Connection[Any]
) -> None:
    recorded = admin.execute("SELECT version, name FROM eventkeep_migrations ORDER BY 1").fetchall()
    assert recorded == [
        (1, "initial"),
        (2, "snapshots"),
        (3, "projections"),
        (4, "uncontended_numbering"),
        (5, "positions_not_null"),
        (6, "protect_stream_heads"),
        (7, "tags"),
        (8, "personal_keys"),
        (9, "lifecycle_operations_log"),
        (10, "json_copies_in_plpgsql"),
        (11, "api_tokens"),
        (12, "append_with_known_heads"),
        (13, "conditional_append_in_one_statement"),
        (14, "flat_numbering"),
        (15, "json_copies_in_a_view"),
        (16, "bulk_load_state"),
        (17, "group_commit"),
        (18, "heads_from_the_events"),
        (19, "no_gaps"),
    ]
    with eventkeep.open_store(target.url):
        pass
    assert admin.execute("SELECT count(*) FROM eventkeep_migrations").fetchone() == (19,)


def test_stores_opened_at_once_on_a_new_schema_migrate_it_once(target: Target) -> None:
    opened: list[PostgresStore] = []
    calls = [Background(lambda: opened.append(eventkeep.open_store(target.url))) for _ in range(4)]
    for call in calls:
        call.join()
        assert call.error is None
    for store in opened:
        store.close()


def test_closing_a_store_twice_is_harmless_and_a_closed_store_says_so(target: Target) -> None:
    store = eventkeep.open_store(target.url)
    store.close()
    store.close()
    with pytest.raises(BackendUnavailableError, match="closed"):
        store.head_position()


def test_without_psycopg_open_store_explains_what_to_install() -> None:
    program = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import eventkeep\n"
        "try:\n"
        "    eventkeep.open_store('postgresql://localhost/db')\n"
        "except eventkeep.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'eventkeep[postgres]'" in out.stdout


def test_a_connection_an_error_left_in_a_transaction_goes_back_to_the_pool_rolled_back(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    with eventkeep.open_store(target.url, pool_min_size=1, pool_max_size=1) as store:
        assert isinstance(store, PostgresStore)
        db = store._db

        def driver_error_in_a_transaction() -> None:
            with db.connection() as conn:
                conn.execute("BEGIN")
                conn.execute("SELECT 1/0")  # a driver error inside the lease: translated

        def other_error_in_a_transaction() -> None:
            with db.connection() as conn:
                conn.execute("BEGIN")
                conn.execute("CREATE TEMP TABLE lease_probe (n int)")
                raise KeyError("not a driver error: passes through untouched")

        with pytest.raises(eventkeep.EventkeepError) as raised:
            driver_error_in_a_transaction()
        assert "division by zero" in str(raised.value)
        assert isinstance(raised.value.__cause__, psycopg.Error)
        with pytest.raises(KeyError):
            other_error_in_a_transaction()
        with db.connection() as again:  # the pool's only connection, both times
            assert again.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert again.execute("SELECT to_regclass('pg_temp.lease_probe')").fetchone() == (None,)
        assert "rolling back returned connection" not in caplog.text
        store.append("after", events_with_ids(uuid.uuid4()))
        assert store.stream_version("after") == 1
