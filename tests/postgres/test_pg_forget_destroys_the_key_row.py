"""On PostgreSQL, ``forget`` deletes the key's row for good, bumps the epoch, and writes an
append-only forget log; a stray session sees only ciphertext and cannot rewrite the log."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pg_harness import raw_connection

from eventkeep.backends.postgres import PostgresStore
from eventkeep.testing.events import CustomerRegistered
from pg_fixtures import Target


@pytest.fixture
def sql(target: Target, pg_store: PostgresStore) -> Any:
    for customer in ("c1", "c2"):
        pg_store.append(
            f"customer-{customer}",
            [CustomerRegistered(customer_id=customer, email=f"{customer}@example.com")],
        )
    pg_store.forget("c1", by="dpo", reason="ticket 7")
    conn = raw_connection(target.base_url, target.schema)
    yield conn
    conn.close()


def test_the_forgotten_subjects_key_row_is_gone_and_the_epoch_moved(sql: Any) -> None:
    keys = sql.execute("SELECT subject, length(key) FROM personal_keys").fetchall()
    assert keys == [("c2", 32)]
    assert sql.execute("SELECT epoch FROM personal_key_epoch").fetchone()[0] == 1


def test_the_stored_data_holds_no_plaintext_and_jsonb_shows_the_envelope(sql: Any) -> None:
    rows = sql.execute("SELECT data_bytes, data FROM events_json ORDER BY position").fetchall()
    assert len(rows) == 2
    assert all(b"@example.com" not in bytes(raw) for raw, _ in rows)
    assert all(set(data["email"]) == {"$eventkeep:personal"} for _, data in rows)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE forgotten_subjects SET subject = 'x'",
        "DELETE FROM forgotten_subjects",
        "TRUNCATE forgotten_subjects",
    ],
)
def test_the_forget_log_refuses_update_delete_and_truncate(sql: Any, statement: str) -> None:
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        sql.execute(statement)
    sql.rollback()
    rows = sql.execute("SELECT subject, by_whom, reason, had_key FROM forgotten_subjects")
    assert rows.fetchall() == [("c1", "dpo", "ticket 7", True)]
