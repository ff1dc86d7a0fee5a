"""The SQLite store's keys table (its default :class:`~eventkeep.store.shredding.KeyStore`)
and forget log; see ``migrations/0007_personal_keys.sql``."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from eventkeep.errors import KeyConflictError
from eventkeep.store.recorded import from_micros
from eventkeep.store.shredding import ForgottenSubject
from eventkeep.store.types import PreparedAppend

__all__ = [
    "SQLiteKeyStore",
    "delete_snapshots_holding",
    "forget_log",
    "log_forget",
    "store_new_keys",
]

_MAX_PARAMS = 500

KEYS = "SELECT subject, key FROM personal_keys WHERE subject IN ({marks})"
INSERT_KEY = (
    "INSERT INTO personal_keys (subject, key, created_at) VALUES (?, ?, ?) "
    "ON CONFLICT (subject) DO NOTHING"
)
KEY = "SELECT key FROM personal_keys WHERE subject = ?"
DELETE_KEY = "DELETE FROM personal_keys WHERE subject = ?"
BUMP_EPOCH = "UPDATE personal_key_epoch SET epoch = epoch + 1 WHERE id = 1"
EPOCH = "SELECT epoch FROM personal_key_epoch WHERE id = 1"
LOG_FORGET = (
    "INSERT INTO forgotten_subjects (subject, forgotten_at, by, reason, had_key) "
    "VALUES (?, ?, ?, ?, ?) RETURNING seq"
)
FORGET_LOG = (
    "SELECT seq, subject, forgotten_at, by, reason, had_key FROM forgotten_subjects "
    "WHERE seq > ? ORDER BY seq"
)
STREAMS_HOLDING = "SELECT DISTINCT stream_id FROM events WHERE instr(data, ?) > 0"
DELETE_STREAM_SNAPSHOTS = "DELETE FROM snapshots WHERE stream_id = ?"


class SQLiteKeyStore:
    """Per-subject keys in the store's ``personal_keys`` table; inside a store transaction
    on the calling thread, reads and writes join it."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def keys(self, subjects: Collection[str]) -> dict[str, bytes]:
        wanted = list(subjects)
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), _MAX_PARAMS):
            chunk = tuple(wanted[start : start + _MAX_PARAMS])
            rows = self._store._query(KEYS.format(marks=",".join("?" * len(chunk))), chunk)
            found.update((subject, bytes(key)) for subject, key in rows)
        return found

    def create_key(self, subject: str, key: bytes) -> bytes:
        with self._store._write_or_join() as cur:
            cur.execute(INSERT_KEY, (subject, key, time.time_ns() // 1000))
            return bytes(cur.execute(KEY, (subject,)).fetchone()[0])

    def destroy_key(self, subject: str) -> bool:
        with self._store._write_or_join() as cur:
            had: bool = cur.execute(DELETE_KEY, (subject,)).rowcount > 0
            cur.execute(BUMP_EPOCH)
            return had

    def epoch(self) -> int:
        return int(self._store._query(EPOCH)[0][0])


def store_new_keys(cur: Any, batches: list[PreparedAppend], now: int) -> None:
    """Store the keys the append's events made (their subjects' first use), in the append's
    transaction. Raises ``KeyConflictError``, having written nothing else, for a subject that
    has a different key by now (another append stored its first key meanwhile)."""
    made = {subject: key for batch in batches for ev in batch.events for subject, key in ev.keys}
    if not made:
        return
    lost = []
    for subject, key in made.items():
        inserted = cur.execute(INSERT_KEY, (subject, key, now)).rowcount
        if not inserted and bytes(cur.execute(KEY, (subject,)).fetchone()[0]) != key:
            lost.append(subject)
    if lost:
        raise KeyConflictError(lost)


def log_forget(
    store: Any, subject: str, at_us: int, by: str, reason: str, had_key: bool
) -> ForgottenSubject:
    with store._write_or_join() as cur:
        seq = int(cur.execute(LOG_FORGET, (subject, at_us, by, reason, int(had_key))).fetchone()[0])
    return ForgottenSubject(seq, subject, from_micros(at_us), by, reason, had_key)


def forget_log(store: Any, after: int) -> list[ForgottenSubject]:
    return [
        ForgottenSubject(seq, subject, from_micros(at), by, reason, bool(had))
        for seq, subject, at, by, reason, had in store._query(FORGET_LOG, (after,))
    ]


def delete_snapshots_holding(store: Any, needle: bytes) -> int:
    streams = [row[0] for row in store._query(STREAMS_HOLDING, (needle.decode(),))]
    if not streams:
        return 0
    with store._write_or_join() as cur:
        return sum(cur.execute(DELETE_STREAM_SNAPSHOTS, (s,)).rowcount for s in streams)
