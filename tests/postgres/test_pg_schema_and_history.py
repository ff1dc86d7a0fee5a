"""The PostgreSQL schema: history the database itself keeps append-only, jsonb users can query,
stores isolated by schema, and positions that survive a dump and restore.
"""

from __future__ import annotations

import subprocess
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from pg_harness import raw_connection

import eventkeep
from eventkeep import RawEvent, StreamAppend
from eventkeep.backends.postgres import PostgresStore
from eventkeep.testing.events import Deposited
from pg_cluster import Cluster
from pg_fixtures import PgServer, Target, new_schema_name, with_schema


@pytest.fixture
def sql(target: Target, pg_store: PostgresStore) -> Any:
    pg_store.append("account-1", [Deposited(amount=Decimal("10.50"))] * 2)
    conn = raw_connection(target.base_url, target.schema)
    yield conn
    conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data_bytes = '{}' WHERE version = 1",
        "UPDATE events SET stream_id = 'elsewhere' WHERE version = 1",
        "UPDATE events SET position = 99 WHERE version = 1",
        "UPDATE events SET position = NULL WHERE version = 1",
        "DELETE FROM events WHERE version = 2",
        "TRUNCATE events",
        "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
        "recorded_at, data_bytes, metadata_bytes, hash) SELECT position + 1000, stream_id, "
        "version, gen_random_uuid(), type, schema_version, recorded_at, data_bytes, "
        "metadata_bytes, hash FROM events "
        "WHERE version = 1 ON CONFLICT (stream_id, version) DO UPDATE SET type = 'x'",
    ],
)
def test_raw_sql_cannot_rewrite_or_delete_stored_events(sql: Any, statement: str) -> None:
    with pytest.raises(psycopg.IntegrityError, match="append-only"):
        sql.execute(statement)
    assert sql.execute("SELECT count(*) FROM events WHERE position IS NOT NULL").fetchone() == (2,)


def test_data_and_metadata_are_queryable_jsonb_beside_the_exact_bytes(
    pg_store: PostgresStore, sql: Any
) -> None:
    pg_store.append(
        "account-2",
        [RawEvent("pg.Big", {"x": 1e300, "tags": ["a", "b"]})],
        metadata={"correlation_id": "c-1"},
    )
    row = sql.execute(
        "SELECT data ->> 'amount', data_bytes, metadata ->> 'correlation_id' FROM events_json "
        "WHERE stream_id = 'account-1' AND version = 1"
    ).fetchone()
    assert row[0] == "10.50"
    assert bytes(row[1]) == b'{"amount":"10.50"}'
    found = sql.execute(
        'SELECT stream_id FROM events_json WHERE data @> \'{"tags": ["b"]}\' '
        "AND metadata ->> 'correlation_id' = 'c-1'"
    ).fetchall()
    assert found == [("account-2",)]
    (big,) = [e for e in pg_store.read_all() if e.stream_id == "account-2"]
    assert big.data == {"x": 1e300, "tags": ["a", "b"]}  # exact, though jsonb is numeric


def test_the_jsonb_copies_are_computed_by_the_view_not_stored_and_an_index_of_yours_serves_them(
    pg_store: PostgresStore, sql: Any
) -> None:
    columns = sql.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'events' ORDER BY 1"
    ).fetchall()
    assert ("data_bytes",) in columns
    assert ("data",) not in columns
    assert ("metadata",) not in columns
    pg_store.append_many(
        [
            StreamAppend(f"order-{n}", [RawEvent("pg.Ordered", {"sku": f"s{n % 50}", "n": n})])
            for n in range(2000)
        ]
    )
    sql.execute("CREATE INDEX events_data_gin ON events USING gin (eventkeep_json(data_bytes))")
    sql.execute("ANALYZE events")
    query = 'SELECT count(*) FROM events_json WHERE data @> \'{"sku": "s7"}\''
    plan = "\n".join(row[0] for row in sql.execute("EXPLAIN " + query).fetchall())
    assert "events_data_gin" in plan
    assert sql.execute(query).fetchone() == (40,)


def test_an_event_holding_a_nul_character_is_stored_exactly_without_a_jsonb_copy(
    pg_store: PostgresStore, sql: Any
) -> None:
    pg_store.append("nul", [RawEvent("pg.Nul", {"text": "a\x00b"})])
    (event,) = pg_store.read_stream("nul")
    assert event.data == {"text": "a\x00b"}
    assert sql.execute("SELECT data FROM events_json WHERE stream_id = 'nul'").fetchone() == (None,)
    assert pg_store.verify().ok


def test_stores_in_different_schemas_never_see_each_other(
    pg_server: PgServer, request: Any
) -> None:
    names = [f"ek_iso_{uuid.uuid4().hex[:8]}_{n}" for n in range(2)]
    for name in names:
        request.addfinalizer(lambda name=name: pg_server.drop_schema(name))
    with (
        eventkeep.open_store(with_schema(pg_server.url, names[0])) as one,
        eventkeep.open_store(with_schema(pg_server.url, names[1])) as two,
    ):
        one.append("s", [RawEvent("pg.One", {})])
        two.append("s", [RawEvent("pg.Two", {})] * 2)
        assert [e.type for e in one.read_all()] == ["pg.One"]
        assert [e.type for e in two.read_all()] == ["pg.Two", "pg.Two"]
        assert (one.head_position(), two.head_position()) == (1, 2)


def test_a_schema_named_like_a_reserved_word_works(pg_server: PgServer, request: Any) -> None:
    request.addfinalizer(lambda: pg_server.drop_schema('"user"'))
    with eventkeep.open_store(with_schema(pg_server.url, "user")) as store:
        store.append("s", [RawEvent("pg.Reserved", {})])
        assert [e.type for e in store.read_all()] == ["pg.Reserved"]
        assert store.wait_for_events(0, timeout=30)


def test_positions_and_hashes_survive_a_dump_and_restore(
    own_cluster: Cluster, request: Any
) -> None:
    server = PgServer(own_cluster.url, own_cluster)
    schema = new_schema_name()
    request.addfinalizer(lambda: server.drop_schema(schema))
    with eventkeep.open_store(with_schema(server.url, schema)) as store:
        for n in range(5):
            store.append(f"s-{n % 2}", [RawEvent("pg.Dumped", {"n": n})] * 2)
        before = [(e.position, e.event_id, e.stream_id, e.version) for e in store.read_all()]
    database = f"restored_{uuid.uuid4().hex[:8]}"
    with server.admin() as admin:
        admin.execute(f"CREATE DATABASE {database}")
    request.addfinalizer(lambda: _drop_database(server, database))
    bin_dir = own_cluster.bin_dir
    dump = subprocess.run(
        [str(bin_dir / "pg_dump"), "-n", schema, server.url],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    restored_url = server.url.rsplit("/", 1)[0] + f"/{database}"
    subprocess.run(
        [str(bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", restored_url],
        input=dump,
        capture_output=True,
        check=True,
        timeout=120,
    )
    with eventkeep.open_store(with_schema(restored_url, schema)) as restored:
        after = [(e.position, e.event_id, e.stream_id, e.version) for e in restored.read_all()]
        assert after == before
        assert restored.verify().ok
        assert restored.append("s-0", [RawEvent("pg.New", {})]).position == before[-1][0] + 1


def _drop_database(server: PgServer, database: str) -> None:
    with server.admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_the_jsonb_copies_are_made_by_a_plpgsql_function_planned_once_per_session(
    sql: Any,
) -> None:
    # As an SQL function that PostgreSQL does not inline, eventkeep_json was planned again for
    # every INSERT: about a quarter of the server's CPU per append (benchmarks/pg_costs.py).
    # Its results are the same (the jsonb tests above); this pins down the language.
    row = sql.execute(
        "SELECT l.lanname FROM pg_proc AS p JOIN pg_language AS l ON l.oid = p.prolang "
        "WHERE p.oid = 'eventkeep_json(bytea)'::regprocedure"
    ).fetchone()
    assert row == ("plpgsql",)
