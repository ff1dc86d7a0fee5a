"""The PostgreSQL store's keys table (its default :class:`~eventkeep.store.shredding.KeyStore`)
and forget log; see ``migrations/0008_personal_keys.sql``."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg

from eventkeep.store.recorded import from_micros
from eventkeep.store.shredding import ForgottenSubject

__all__ = ["PostgresKeyStore", "delete_snapshots_holding", "forget_log", "log_forget"]

KEYS = "SELECT subject, key FROM personal_keys WHERE subject = ANY(%s)"
CREATE_KEY = (
    "WITH added AS (INSERT INTO personal_keys (subject, key) VALUES (%s, %s) "
    "ON CONFLICT (subject) DO NOTHING RETURNING key) "
    "SELECT key FROM added UNION ALL SELECT key FROM personal_keys WHERE subject = %s LIMIT 1"
)
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
DELETE_KEY = "DELETE FROM personal_keys WHERE subject = %s"
BUMP_EPOCH = "UPDATE personal_key_epoch SET epoch = epoch + 1 WHERE id = 1"
EPOCH = "SELECT epoch FROM personal_key_epoch WHERE id = 1"
LOG_FORGET = (
    "INSERT INTO forgotten_subjects (subject, forgotten_at, by_whom, reason, had_key) "
    "VALUES (%s, %s, %s, %s, %s) RETURNING seq, forgotten_at"
)
FORGET_LOG = (
    "SELECT seq, subject, forgotten_at, by_whom, reason, had_key FROM forgotten_subjects "
    "WHERE seq > %s ORDER BY seq"
)
STREAMS_HOLDING = "SELECT DISTINCT stream_id FROM events WHERE position(%s IN data_bytes) > 0"
DELETE_STREAM_SNAPSHOTS = "DELETE FROM snapshots WHERE stream_id = ANY(%s)"


@contextlib.contextmanager
def _writing(store: Any) -> Iterator[psycopg.Connection[Any]]:
    """This thread's open store transaction's connection (a savepoint in it), or a pooled
    connection in a transaction of its own."""
    tx_conn = getattr(store._local, "conn", None)
    if tx_conn is not None:
        with store._db.translate(), tx_conn.transaction():
            yield tx_conn
        store._local.wrote = True  # reads from a replica wait for the transaction's commit
        return
    with store._db.connection() as conn, store._db.translate(), conn.transaction():
        yield conn
    store._wrote()  # reads from a replica (keys, the forget log) wait for it


class PostgresKeyStore:
    """Per-subject keys in the store schema's ``personal_keys`` table; inside a store
    transaction on the calling thread, reads and writes join it."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def keys(self, subjects: Collection[str]) -> dict[str, bytes]:
        with self._store._reading() as conn:
            rows = conn.execute(KEYS, (list(subjects),)).fetchall()
        return {subject: bytes(key) for subject, key in rows}

    def create_key(self, subject: str, key: bytes) -> bytes:
        """Store a subject's first key just before the append that uses it.

        Its commit does not wait for the disk (``synchronous_commit`` off for this transaction
        only): the append's own commit, which does wait, flushes the WAL up to itself, this key
        included, so the key is durable whenever the events sealed with it are. A key lost in a
        crash before that belonged to an append that was not stored either.
        """
        store = self._store
        if getattr(store._local, "conn", None) is not None:  # in the store transaction
            with _writing(store) as conn:
                row = conn.execute(CREATE_KEY, (subject, key, subject)).fetchone()
        else:  # one round trip: BEGIN, SET LOCAL, the insert and COMMIT, pipelined
            with store._db.connection() as conn, store._db.translate():
                with conn.pipeline(), conn.transaction():
                    conn.execute(ASYNC_COMMIT)
                    cur = conn.execute(CREATE_KEY, (subject, key, subject))
                row = cur.fetchone()
        assert row is not None
        return bytes(row[0])

    def destroy_key(self, subject: str) -> bool:
        with _writing(self._store) as conn:
            had = conn.execute(DELETE_KEY, (subject,)).rowcount > 0
            conn.execute(BUMP_EPOCH)
        return had

    def epoch(self) -> int:
        with self._store._reading() as conn:
            row = conn.execute(EPOCH).fetchone()
        return int(row[0]) if row else 0


def log_forget(
    store: Any, subject: str, at_us: int, by: str, reason: str, had_key: bool
) -> ForgottenSubject:
    with _writing(store) as conn:
        row = conn.execute(
            LOG_FORGET, (subject, from_micros(at_us), by, reason, had_key)
        ).fetchone()
    assert row is not None
    return ForgottenSubject(int(row[0]), subject, _when(row[1]), by, reason, had_key)


def _when(value: Any) -> datetime:
    """A timestamptz as an aware UTC datetime (the store's connections load microseconds)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return from_micros(int(value))


def forget_log(store: Any, after: int) -> list[ForgottenSubject]:
    with store._reading() as conn:
        rows = conn.execute(FORGET_LOG, (after,)).fetchall()
    return [
        ForgottenSubject(int(seq), subject, _when(at), by, reason, bool(had))
        for seq, subject, at, by, reason, had in rows
    ]


def delete_snapshots_holding(store: Any, needle: bytes) -> int:
    with store._reading() as conn:
        streams = [row[0] for row in conn.execute(STREAMS_HOLDING, (needle,)).fetchall()]
    if not streams:
        return 0
    with _writing(store) as conn:
        return conn.execute(DELETE_STREAM_SNAPSHOTS, (streams,)).rowcount
