"""pytest fixtures for the PostgreSQL tests: one server per session, one fresh schema per store.

``tests/conftest.py`` imports ``pg_server`` from here, adds "postgres" to its backends when
PostgreSQL can be had (see ``tests/pg_cluster.py``), and asks :func:`fresh_store_url` for a
store URL. Every store gets its own schema (``schema=`` option), dropped when its test ends, so
tests never see each other's events and never need a database of their own.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

import pg_cluster

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "APPLIED",
    "PgServer",
    "ReplicaPair",
    "Target",
    "delete_postgres",
    "fresh_store_url",
    "pg_replica",
    "pg_server",
    "require_driver",
    "tamper_postgres",
    "wanted",
]

TAMPERED_DATA = b'{"amount":"1000000.00"}'
_schemas = itertools.count()


@dataclass
class PgServer:
    """The session's PostgreSQL: its base URL, and the cluster when this session runs it."""

    url: str
    cluster: pg_cluster.Cluster | None

    def admin(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def drop_schema(self, schema: str) -> None:
        import psycopg

        try:
            with self.admin() as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except psycopg.OperationalError:
            pass  # the server is down (a crash test): nothing left to clean


@dataclass
class Target:
    """Where a test's store lives: the server, the schema, and the store URL."""

    server: PgServer
    schema: str

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def url(self) -> str:
        return with_schema(self.server.url, self.schema)


def wanted() -> bool:
    """Whether "postgres" joins the shared backends: when it can run, and always in CI."""
    return pg_cluster.availability()[0] or pg_cluster.in_ci()


def require_driver() -> None:
    """Skip the calling test module when psycopg is missing (fail it when CI is set)."""
    if pg_cluster.driver_installed():
        return
    reason = pg_cluster.availability()[1]
    if pg_cluster.in_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    available, reason = pg_cluster.availability()
    if not available:
        if pg_cluster.in_ci():
            pytest.fail(f"CI is set but PostgreSQL is missing: {reason}", pytrace=False)
        pytest.skip(reason)
    url = os.environ.get(pg_cluster.ENV_URL)
    if url:
        yield PgServer(url, None)
        return
    cluster = pg_cluster.start_cluster()
    try:
        yield PgServer(cluster.url, cluster)
    finally:
        cluster.destroy()


APPLIED = {"options": "-c synchronous_commit=remote_apply"}
"""Store options whose commits return once the replica has replayed them (``ReplicaPair``)."""


@dataclass
class ReplicaPair:
    """A primary of its own and a hot standby streaming from it (``pg_basebackup -R``)."""

    primary: pg_cluster.Cluster
    replica: pg_cluster.ReplicaCluster

    def store_url(self, request: pytest.FixtureRequest) -> str:
        """A store URL on the primary, in a schema of its own (dropped after the test)."""
        server = PgServer(self.primary.url, self.primary)
        return fresh_store_url(request, server)

    @property
    def read_url(self) -> str:
        return self.replica.url

    def on_replica(self, statement: str) -> Any:
        """Run ``statement`` on the replica as the superuser; its first row."""
        import psycopg

        with psycopg.connect(self.replica.url, autocommit=True, connect_timeout=10) as conn:
            return conn.execute(statement).fetchone()

    def make_synchronous(self) -> None:
        """Make the replica a synchronous standby: a session with ``synchronous_commit =
        remote_apply`` (:data:`APPLIED`) then commits only once the replica has replayed the
        commit; sessions with the default (``on``) wait only for the replica's flush, so a
        paused replay does not hold them up."""
        import psycopg

        with psycopg.connect(self.primary.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = conn.execute("SELECT sync_state FROM pg_stat_replication").fetchone()
                if row is not None and row[0] == "sync":
                    return
                time.sleep(0.05)
        raise RuntimeError("the replica did not become a synchronous standby")

    def pause_replay(self) -> None:
        """Pause the replica's replay once it has replayed all the primary wrote so far: a
        pause requested while it lags would leave a store's earlier writes unreplayed, and the
        store's reads would then go to the primary (after its ``wait``)."""
        self.caught_up()
        self.on_replica("SELECT pg_wal_replay_pause()")

    def caught_up(self) -> None:
        """Wait until the replica has replayed the primary's WAL as it is now."""
        import psycopg

        from eventkeep.backends.postgres.replica import lsn_number, record_end

        with psycopg.connect(self.primary.url, autocommit=True, connect_timeout=10) as conn:
            # What a store takes as its floor when it reads on the primary (replica.py).
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            # A commit with a transaction id flushes the WAL up to it, the record before it
            # included: the walsender sends only flushed WAL.
            conn.execute("SELECT pg_current_xact_id()")
        lsn = record_end(lsn_number(row[0] if row else None))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (replayed,) = self.on_replica("SELECT pg_last_wal_replay_lsn()::text")
            if lsn_number(replayed) >= lsn:
                return
            time.sleep(0.02)
        raise RuntimeError(f"the replica did not replay the primary's WAL up to {lsn}")

    def resume_replay(self) -> None:
        self.on_replica("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="session")
def pg_replica() -> Iterator[ReplicaPair]:
    """A primary and a streaming replica on loopback, started for the tests that ask for them
    (a server of their own: replay is paused and resumed, which would stall other tests)."""
    if pg_cluster.find_bin_dir() is None or not pg_cluster.driver_installed():
        reason = "replica tests need psycopg and PostgreSQL server binaries (pg_basebackup)"
        if pg_cluster.in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    primary = pg_cluster.start_cluster()
    try:
        replica = pg_cluster.start_replica(primary)
        try:
            pair = ReplicaPair(primary, replica)
            pair.make_synchronous()
            yield pair
        finally:
            replica.destroy()
    finally:
        primary.destroy()


def new_schema_name() -> str:
    return f"ek_test_{os.getpid()}_{next(_schemas)}"


def fresh_store_url(request: pytest.FixtureRequest, server: PgServer | None = None) -> str:
    """A store URL in a schema of its own, dropped when the requesting test ends."""
    server = server or request.getfixturevalue("pg_server")
    schema = new_schema_name()
    request.addfinalizer(lambda: server.drop_schema(schema))
    return with_schema(server.url, schema)


def with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}schema={quote(schema)}"


def tamper_postgres(
    url: str,
    schema: str,
    stream_id: str,
    version: int,
    data: bytes = TAMPERED_DATA,
    *,
    applied: bool = False,
) -> None:
    """Edit one stored event's bytes behind the triggers' back, as an intruder with DDL rights:
    disable the append-only UPDATE trigger, UPDATE the row, enable the trigger, in one
    transaction. ``applied``: commit once a synchronous standby replayed it (``APPLIED``), so
    that a store reading from the replica sees the edit at once.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if applied:
            conn.execute("SET synchronous_commit = remote_apply")
        with conn.transaction():
            conn.execute(f"ALTER TABLE {schema}.events DISABLE TRIGGER events_refuse_update")
            updated = conn.execute(
                f"UPDATE {schema}.events SET data_bytes = %s WHERE stream_id = %s AND version = %s",
                (data, stream_id, version),
            ).rowcount
            if updated != 1:
                raise LookupError(
                    f"no event {stream_id!r}@{version} in schema {schema} to tamper with"
                )
            conn.execute(f"ALTER TABLE {schema}.events ENABLE TRIGGER events_refuse_update")


def delete_postgres(
    url: str, schema: str, stream_id: str, version: int, *, applied: bool = False
) -> None:
    """Delete one stored event behind the operations log, as an intruder with DDL rights
    (``applied``: as for :func:`tamper_postgres`)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        if applied:
            conn.execute("SET LOCAL synchronous_commit = remote_apply")
        conn.execute(f"ALTER TABLE {schema}.events DISABLE TRIGGER events_refuse_delete")
        deleted = conn.execute(
            f"DELETE FROM {schema}.events WHERE stream_id = %s AND version = %s",
            (stream_id, version),
        ).rowcount
        if deleted != 1:
            raise LookupError(f"no event {stream_id!r}@{version} in schema {schema} to delete")
        conn.execute(f"ALTER TABLE {schema}.events ENABLE TRIGGER events_refuse_delete")
