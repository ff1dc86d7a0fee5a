"""Fixtures of the PostgreSQL-only tests: a fresh schema (and store) per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pg_cluster import Cluster, driver_installed, find_bin_dir, in_ci, start_cluster
from pg_fixtures import (
    PgServer,
    Target,
    new_schema_name,
    pg_replica,  # noqa: F401 - a primary and its streaming replica, a fixture
)

if not driver_installed() and not in_ci():
    # Nothing here can even be imported without psycopg; the contract module says why.
    collect_ignore_glob = ["test_*.py"]

import eventkeep


@pytest.fixture
def target(pg_server: PgServer) -> Iterator[Target]:
    place = Target(pg_server, new_schema_name())
    yield place
    pg_server.drop_schema(place.schema)


@pytest.fixture
def pg_store(target: Target) -> Iterator[Any]:
    from eventkeep.backends.postgres import PostgresStore

    store = eventkeep.open_store(target.url)
    assert isinstance(store, PostgresStore)
    yield store
    store.close()


@pytest.fixture
def own_cluster(pg_server: PgServer) -> Iterator[Cluster]:
    """A server this test may kill or add databases to: the session's own throwaway cluster,
    or (when the session uses $EVENTKEEP_TEST_POSTGRES_URL) a private one."""
    if pg_server.cluster is not None:
        yield pg_server.cluster
        return
    if find_bin_dir() is None:
        reason = "this test needs PostgreSQL server binaries to run a server of its own"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    private = start_cluster()
    try:
        yield private
    finally:
        private.destroy()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements each round trip of the synchronous driver sends (pipelines as one) to
    decide and write an append. Not the group commit's flush that follows a written append
    (``sql.FLUSH_WAL``, one more round trip: ``test_pg_group_commit.py`` counts those)."""
    from eventkeep.backends.postgres import sql, writer  # psycopg: imported only when used
    from eventkeep.backends.postgres.plans import Pipeline, Run

    sent: list[str] = []
    original = writer._do

    def do(conn: Any, op: Any) -> Any:
        if isinstance(op, Run) and op.statement != sql.FLUSH_WAL:
            sent.append(str(op.statement))
        elif isinstance(op, Pipeline):
            sent.append(" | ".join(str(step.statement) for step in op.steps))
        return original(conn, op)

    monkeypatch.setattr(writer, "_do", do)
    return sent
