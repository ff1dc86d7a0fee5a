"""What the hash chains alone do not see, on PostgreSQL: the indexes (amcheck), positions, and
(with an anchor) a history rewritten by someone with DDL rights. (No stream head is stored,
migration 0018: a stream's head is its last event.)

Every intrusion runs through a raw psycopg connection of the schema's owner, in one transaction
with the eventkeep triggers disabled, as such an administrator would.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import eventkeep
from eventkeep import RawEvent, StreamAppend
from eventkeep.backends.postgres import PostgresStore
from eventkeep.store.anchors import Anchor, load_key
from eventkeep.store.hashing import GENESIS, chain_events
from pg_fixtures import PgServer, Target, with_schema

KEY = load_key(b"postgres tests anchor secret, 40 bytes.")
STREAMS = {"alpha": 4, "beta": 5, "gamma": 3}
Intrusion = Callable[[psycopg.Connection[Any]], None]


def fill(store: eventkeep.EventStore) -> None:
    for version in range(1, 6):
        store.append_many(
            [
                StreamAppend(stream, [RawEvent("Deposited", {"n": version})], version - 1)
                for stream, length in STREAMS.items()
                if version <= length
            ]
        )


@pytest.fixture
def store(pg_store: PostgresStore) -> PostgresStore:
    fill(pg_store)
    return pg_store


@pytest.fixture
def anchor(store: PostgresStore) -> Anchor:
    return store.anchor(KEY)


@contextlib.contextmanager
def raw(target: Target) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {target.schema}")
        yield conn


def intrude(target: Target, intrusion: Intrusion) -> None:
    """Run ``intrusion`` in one transaction with the user triggers of the events off."""
    with raw(target) as conn, conn.transaction():
        conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        intrusion(conn)
        conn.execute("ALTER TABLE events ENABLE TRIGGER USER")


class _Event(NamedTuple):
    event_id: bytes
    type: str
    schema_version: int
    data: bytes
    metadata: bytes
    tags: tuple[str, ...] = ()


def rechain(conn: psycopg.Connection[Any], stream_id: str) -> None:
    """Recompute a stream's hash chain with the public algorithm."""
    rows = conn.execute(
        "SELECT version, event_id, type, schema_version, data_bytes, metadata_bytes, "
        "(extract(epoch FROM recorded_at) * 1000000)::bigint FROM events "
        "WHERE stream_id = %s ORDER BY version",
        (stream_id,),
    ).fetchall()
    previous = GENESIS
    for version, event_id, type_, schema, data, metadata, recorded_at in rows:
        event = _Event(event_id.bytes, type_, schema, bytes(data), bytes(metadata))
        previous = chain_events(previous, stream_id, version - 1, [event], recorded_at)[0]
        conn.execute(
            "UPDATE events SET hash = %s WHERE stream_id = %s AND version = %s",
            (previous, stream_id, version),
        )


def position_of(conn: psycopg.Connection[Any], stream_id: str, version: int) -> int:
    row = conn.execute(
        "SELECT position FROM events WHERE stream_id = %s AND version = %s", (stream_id, version)
    ).fetchone()
    assert row is not None
    return int(row[0])


def swap_positions(conn: psycopg.Connection[Any], first: int, second: int) -> None:
    conn.execute("UPDATE events SET position = -1 WHERE position = %s", (first,))
    conn.execute("UPDATE events SET position = %s WHERE position = %s", (first, second))
    conn.execute("UPDATE events SET position = %s WHERE position = -1", (second,))


# -- the indexes (amcheck) -----------------------------------------------------------------------


@contextlib.contextmanager
def database(server: PgServer, *, amcheck: bool) -> Iterator[str]:
    """A store URL in a new database of its own (amcheck is installed per database)."""
    name = f"ek_amcheck_{uuid.uuid4().hex[:12]}"
    with server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(server.url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        if amcheck:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION amcheck")
        yield with_schema(url, "eventkeep")
    finally:
        with server.admin() as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_deep_verify_checks_every_index_with_amcheck_when_it_is_installed(
    pg_server: PgServer,
) -> None:
    with database(pg_server, amcheck=True) as url, eventkeep.open_store(url) as store:
        fill(store)
        report = store.verify()
    assert report.ok, report
    checked = [item for item in report.checked if "amcheck" in item]
    assert len(checked) == 1
    assert "B-tree indexes" in checked[0]
    assert not any("amcheck" in item for item in report.not_checked)


def test_an_index_that_lacks_a_row_is_found_by_a_deep_verify(pg_server: PgServer) -> None:
    """An administrator stops PostgreSQL from maintaining the type index (a catalog edit) while
    an event is appended: the index then lacks that row, and read_all(types=...) misses it."""
    with database(pg_server, amcheck=True) as url, eventkeep.open_store(url) as store:
        fill(store)
        assert isinstance(store, PostgresStore)
        index = f"{store.schema}.events_by_type"
        with psycopg.connect(url.partition("?")[0], autocommit=True) as admin:
            ready = "UPDATE pg_index SET indisready = %s WHERE indexrelid = %s::regclass"
            admin.execute(ready, (False, index))
            with eventkeep.open_store(url) as writer:  # a new connection sees the catalog edit
                writer.append("delta", [RawEvent("Withdrawn", {})])
            admin.execute(ready, (True, index))
        assert list(store.read_all(types=["Withdrawn"])) == []  # the damage is real
        assert store.verify(deep=False).ok
        report = store.verify()
    assert not report.ok
    assert report.broken == ()
    assert [p for p in report.problems if p.startswith("index events_by_type:")], report


def test_a_role_that_may_not_run_amcheck_gets_the_indexes_reported_unchecked(
    pg_server: PgServer,
) -> None:
    role = f"ek_plain_{uuid.uuid4().hex[:8]}"
    try:
        with database(pg_server, amcheck=True) as url:
            base, _, query = url.partition("?")
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f"CREATE ROLE {role} LOGIN")
                admin.execute(f"GRANT CREATE ON DATABASE {urlsplit(base).path[1:]} TO {role}")
            parts = urlsplit(base)
            netloc = f"{role}@{parts.netloc.rpartition('@')[2]}"
            with eventkeep.open_store(
                urlunsplit(parts._replace(netloc=netloc)) + "?" + query
            ) as store:
                fill(store)
                report = store.verify()
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute("DROP SCHEMA eventkeep CASCADE")  # owned by the role
    finally:
        with pg_server.admin() as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")
    assert report.ok
    assert any("may not run amcheck" in item for item in report.not_checked), report


def test_without_amcheck_the_report_says_the_indexes_were_not_checked(
    pg_server: PgServer,
) -> None:
    with database(pg_server, amcheck=False) as url, eventkeep.open_store(url) as store:
        fill(store)
        report = store.verify()
        quick = store.verify(deep=False)
    assert report.ok
    assert any("amcheck extension is not installed" in item for item in report.not_checked)
    assert any("skipped" in item for item in quick.not_checked)


# -- positions -----------------------------------------------------------------------------------


def test_two_events_of_a_stream_with_swapped_positions_are_reported(
    store: PostgresStore, target: Target
) -> None:
    def swap(conn: psycopg.Connection[Any]) -> None:
        swap_positions(conn, position_of(conn, "beta", 1), position_of(conn, "beta", 2))

    intrude(target, swap)
    report = store.verify()
    assert [(b.stream_id, b.version) for b in report.broken] == [("beta", 2)]
    assert "reordered" in report.broken[0].reason


# -- anchors: what verify alone cannot see -----------------------------------------------------


def edit_and_rechain(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "UPDATE events SET data_bytes = '{\"n\":1000}'::bytea "
        "WHERE stream_id = 'beta' AND version = 2"
    )
    rechain(conn, "beta")


def delete_a_stream(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM events WHERE stream_id = 'gamma'")


def cut_a_tail(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM events WHERE stream_id = 'beta' AND version > 3")
    rechain(conn, "beta")  # the head is version 3 now


def forge_an_event(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "UPDATE events SET event_id = gen_random_uuid(), data_bytes = '{\"n\":-1}'::bytea "
        "WHERE stream_id = 'alpha' AND version = 4"
    )
    rechain(conn, "alpha")


def swap_across_streams(conn: psycopg.Connection[Any]) -> None:
    swap_positions(conn, position_of(conn, "alpha", 2), position_of(conn, "beta", 2))


def empty_the_store(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM events")


@pytest.mark.parametrize(
    "intrusion",
    [
        edit_and_rechain,
        delete_a_stream,
        cut_a_tail,
        forge_an_event,
        swap_across_streams,
        empty_the_store,
    ],
    ids=lambda f: f.__name__.replace("_", "-"),
)
def test_an_anchor_finds_what_verify_alone_cannot(
    store: PostgresStore, target: Target, anchor: Anchor, intrusion: Intrusion
) -> None:
    intrude(target, intrusion)
    alone = store.verify()
    assert alone.ok, alone  # the intrusion leaves every chain, head and position consistent
    report = store.verify(anchor=anchor, key=KEY)
    assert not report.ok
    assert report.broken == ()
    assert report.problems, report


def test_another_stores_history_in_the_schema_is_found(
    store: PostgresStore, target: Target, anchor: Anchor, pg_server: PgServer
) -> None:
    """The PostgreSQL counterpart of a replaced SQLite file: the schema's rows replaced by
    those of another store of the same shape."""
    other_schema = f"{target.schema}_other"
    try:
        with eventkeep.open_store(with_schema(pg_server.url, other_schema)) as other:
            fill(other)

        def replace(conn: psycopg.Connection[Any]) -> None:
            empty_the_store(conn)
            conn.execute(
                "INSERT INTO events (position, stream_id, version, event_id, type, "
                "schema_version, recorded_at, data_bytes, metadata_bytes, hash) "
                "SELECT position, stream_id, version, event_id, type, schema_version, "
                f"recorded_at, data_bytes, metadata_bytes, hash FROM {other_schema}.events"
            )

        intrude(target, replace)
    finally:
        pg_server.drop_schema(other_schema)
    assert store.verify().ok
    report = store.verify(anchor=anchor, key=KEY)
    assert not report.ok
    assert any("not the anchored ones" in p for p in report.problems)
