"""Store transactions on PostgreSQL: positions of appends made inside them, the sequencer lock
they hold, reads through the open transaction, record creation races, ``?`` placeholders.

No timing is asserted: where a test needs another session to be waiting for a lock, it polls
``pg_locks`` until it is (with a generous bound), then checks only outcomes.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from pg_harness import raw_connection, wait_until

import eventkeep
from eventkeep import RawEvent
from eventkeep.backends.postgres import PostgresStore
from eventkeep.backends.postgres.transaction import to_psycopg
from eventkeep.examples.bank import BankAccount
from pg_fixtures import Target


def ev(n: int = 0) -> list[RawEvent]:
    return [RawEvent("pg.Happened", {"n": n})]


def advisory_waiters(target: Target) -> int:
    """Sessions of this schema's store waiting (not granted) for an advisory lock."""
    admin = raw_connection(target.base_url, target.schema)
    try:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        return int(row[0]) if row else 0
    finally:
        admin.close()


def test_appends_in_a_transaction_are_numbered_before_it_commits(
    pg_store: PostgresStore,
) -> None:
    pg_store.append("before", ev())
    with pg_store.transaction() as tx:
        result = tx.append("s-1", [*ev(1), *ev(2)])
        assert result.positions == (2, 3)
        # This thread reads through the open transaction: its events, with their positions.
        assert [e.position for e in pg_store.read_stream("s-1")] == [2, 3]
        assert pg_store.head_position() == 3
    assert [e.position for e in pg_store.read_all()] == [1, 2, 3]
    assert pg_store.verify().ok


def test_a_writer_waits_for_an_open_appending_transaction_and_numbers_after_it(
    pg_store: PostgresStore, target: Target
) -> None:
    results: list[Any] = []
    release = threading.Event()
    numbered = threading.Event()

    def in_transaction() -> None:
        with pg_store.transaction() as tx:
            results.append(tx.append("tx-stream", ev()).position)
            numbered.set()
            release.wait(60)

    holder = threading.Thread(target=in_transaction)
    holder.start()
    assert numbered.wait(60)
    with eventkeep.open_store(target.url) as other:
        writer = threading.Thread(target=lambda: results.append(other.append("w", ev()).position))
        writer.start()
        wait_until(lambda: advisory_waiters(target) >= 1, "the writer to wait to be numbered")
        # The writer waits inside its append, the transaction's event is numbered but not
        # committed: a reader sees neither yet, rather than a gap.
        admin = raw_connection(target.base_url, target.schema)
        try:
            row = admin.execute("SELECT count(*), count(position) FROM events").fetchone()
        finally:
            admin.close()
        assert row == (0, 0)
        release.set()
        holder.join(60)
        writer.join(60)
        assert results == [1, 2]
        assert [(e.stream_id, e.position) for e in other.read_all()] == [
            ("tx-stream", 1),
            ("w", 2),
        ]


def test_a_rolled_back_transaction_gives_its_positions_back(pg_store: PostgresStore) -> None:
    def roll_back() -> None:
        with pg_store.transaction() as tx:
            assert tx.append("gone", ev()).position == 1
            raise KeyError("roll back")

    with pytest.raises(KeyError):
        roll_back()
    assert pg_store.append("kept", ev()).position == 1
    assert pg_store.head_position() == 1


def test_a_snapshot_taken_inside_a_transaction_rolls_back_with_it(
    pg_store: PostgresStore,
) -> None:
    accounts = eventkeep.Repository(pg_store, BankAccount, snapshot_every=2)
    account = accounts.create("a")
    account.open(owner="A")
    accounts.save(account)

    def roll_back() -> None:
        with pg_store.transaction() as tx:
            account = accounts.load("a")
            account.deposit(Decimal("1.00"))
            tx.append(accounts.stream_id("a"), account.pending_events, expected_version=1)
            assert accounts.load("a").version == 2  # read through the transaction: snapshotted
            assert pg_store.load_snapshot("bankaccount-a") is not None
            raise KeyError("roll back")

    with pytest.raises(KeyError):
        roll_back()
    assert pg_store.load_snapshot("bankaccount-a") is None
    assert accounts.load("a").version == 1


def test_two_transactions_creating_one_record_are_serialized(
    pg_store: PostgresStore, target: Target
) -> None:
    seen: list[bytes | None] = []
    with pg_store.transaction() as tx:
        assert tx.record("proj") is None

        def second() -> None:
            with pg_store.transaction() as other:
                seen.append(other.record("proj"))

        thread = threading.Thread(target=second)
        thread.start()
        wait_until(lambda: advisory_waiters(target) >= 1, "the second creator to wait")
        tx.save_record("proj", b'{"first":true}')
    thread.join(60)
    assert seen == [b'{"first":true}']


def test_sql_placeholders_and_literal_question_marks(pg_store: PostgresStore) -> None:
    with pg_store.transaction() as tx:
        tx.execute("CREATE TABLE t (k text PRIMARY KEY, v jsonb)")
        tx.execute("INSERT INTO t VALUES (?, ?::jsonb)", ("a?%", '{"x": 1}'))
        rows = tx.execute(
            "SELECT k, 'what? 100%' AS q, $$a?b$$ FROM t WHERE k = ? /* ? */ -- ?\n AND true",
            ("a?%",),
        )
        assert rows == [("a?%", "what? 100%", "a?b")]
        assert tx.execute("SELECT v ? 'x' FROM t") == [(True,)]  # no parameters: as written
        assert tx.execute("SELECT jsonb_exists(v, ?) FROM t", ("x",)) == [(True,)]
        assert tx.execute("UPDATE t SET v = NULL WHERE k = ?", ("zzz",)) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT ?, ?", "SELECT %s, %s"),
        ("SELECT '?', \"a?\", ?", "SELECT '?', \"a?\", %s"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ("SELECT E'\\'?', ?", "SELECT E'\\'?', %s"),
        ("SELECT $x$ ? $x$, $1, ?", "SELECT $x$ ? $x$, $1, %s"),
        ("SELECT 5 % ?", "SELECT 5 %% %s"),
        ("SELECT ? -- ?", "SELECT %s -- ?"),
    ],
)
def test_placeholder_translation(statement: str, expected: str) -> None:
    assert to_psycopg(statement) == expected


def test_placeholder_conversion_is_done_once_per_statement_text() -> None:
    statement = "UPDATE balances SET cents = cents + ? WHERE account = ? -- cached?"
    converted = to_psycopg(statement)
    hits = to_psycopg.cache_info().hits
    for _ in range(100):
        assert to_psycopg(statement) is converted
    assert to_psycopg.cache_info().hits == hits + 100
