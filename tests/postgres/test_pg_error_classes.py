"""PostgreSQL failures are classified by SQLSTATE into errors a caller can act on: retry it,
the outcome is unknown, or fix the configuration. Every error here is raised by a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import eventkeep
import pg_cluster
from eventkeep import BackendUnavailableError, ConfigurationError, IntegrityError, RawEvent
from eventkeep.backends.postgres import PostgresStore
from pg_fixtures import Target


def raise_sqlstate(store: PostgresStore, state: str) -> None:
    with store.transaction() as tx:
        tx.execute(
            f"DO $$ BEGIN RAISE EXCEPTION 'raised on purpose' USING ERRCODE = '{state}'; END $$"
        )


@pytest.mark.parametrize(
    ("state", "error", "retryable", "outcome_unknown", "says"),
    [
        ("40P01", BackendUnavailableError, True, False, "deadlock"),
        ("40001", BackendUnavailableError, True, False, "serialization failure"),
        ("57014", BackendUnavailableError, True, False, "cancelled"),
        ("55P03", BackendUnavailableError, True, False, "lock_timeout"),
        ("53300", BackendUnavailableError, True, False, "no free connection slots"),
        ("57P03", BackendUnavailableError, True, False, "starting up"),
        ("28000", ConfigurationError, False, False, "credentials"),
        ("42501", ConfigurationError, False, False, "privilege"),
        ("23505", IntegrityError, False, False, "refused a write"),
    ],
)
def test_a_sqlstate_becomes_the_error_its_table_row_names(
    pg_store: PostgresStore,
    state: str,
    error: type[Exception],
    retryable: bool,
    outcome_unknown: bool,
    says: str,
) -> None:
    with pytest.raises(error, match=says) as caught:
        raise_sqlstate(pg_store, state)
    assert isinstance(caught.value, eventkeep.EventkeepError)
    assert (caught.value.retryable, caught.value.outcome_unknown) == (retryable, outcome_unknown)
    assert "the connection failed or was lost" not in str(caught.value)
    # The store is still usable afterwards.
    assert pg_store.append("after", [RawEvent("pg.After", {})]).version == 1


def test_a_statement_timeout_is_a_retryable_cancellation_not_a_lost_connection(
    pg_store: PostgresStore,
) -> None:
    def sleep_too_long() -> None:
        with pg_store.transaction() as tx:
            tx.execute("SET LOCAL statement_timeout = 10")
            tx.execute("SELECT pg_sleep(5)")

    with pytest.raises(BackendUnavailableError, match="cancelled") as caught:
        sleep_too_long()
    assert caught.value.retryable
    assert not caught.value.outcome_unknown


@pytest.mark.parametrize("option", ["sslmode=junk", "port=notaport"])
def test_a_bad_libpq_option_is_a_configuration_error(target: Target, option: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        eventkeep.open_store(f"{target.url}&{option}")
    assert not caught.value.retryable


@pytest.fixture
def own_server() -> Iterator[pg_cluster.Cluster]:
    cluster = pg_cluster.start_cluster()
    yield cluster
    cluster.destroy()


def test_a_server_that_went_down_is_unreachable_not_an_exhausted_pool(
    own_server: pg_cluster.Cluster,
) -> None:
    store: Any = eventkeep.open_store(own_server.url, pool_timeout=1, connect_timeout=2)
    try:
        store.append("s", [RawEvent("pg.Before", {})])
        own_server.stop()
        # The pooled connection dies with the server (a lost connection); after it, the pool
        # finds no server to connect to.
        with pytest.raises(BackendUnavailableError):
            store.append("s", [RawEvent("pg.After", {})])
        with pytest.raises(BackendUnavailableError) as caught:
            store.append("s", [RawEvent("pg.After", {})])
        text = str(caught.value)
        # Either the pool found no server to connect to, or (on a loaded machine) one more
        # pooled connection was found dead on the way: never "all connections are in use".
        assert "cannot be reached" in text or "failed or was lost" in text, text
        assert "pool_max_size" not in text
        assert caught.value.retryable
    finally:
        store.close()
