"""The SQLite store's transaction: one ``BEGIN IMMEDIATE`` transaction on the store's writer
connection (store reads on the transaction's thread run inside it, through ``cursor``).

Appends go through the store's own ``_append_in`` (the same checks, hash chain and
idempotency as ``append``), each call inside a savepoint so that a ``ConcurrencyError`` undoes
that call only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

from eventkeep.backends.sqlite import sql
from eventkeep.store import AppendResult, PreparedAppend
from eventkeep.store.base import EventStore, Transaction
from eventkeep.store.dcb import AppendCondition

__all__ = ["AppendIn", "SQLiteTransaction"]

AppendIn = Callable[..., list[AppendResult]]
"""Plans and writes batches on a cursor at a time (the store's ``_append_in``: a cursor, the
batches, the time, and a condition when there is one)."""


class SQLiteTransaction(Transaction):
    """Takes what it needs of its store as arguments (the writer connection, the cursor, the
    store's error translation and its append), so it does not depend on the store's class."""

    def __init__(
        self,
        store: EventStore,
        conn: sqlite3.Connection,
        cur: sqlite3.Cursor,
        *,
        translate: Callable[[], contextlib.AbstractContextManager[None]],
        append_in: AppendIn,
    ) -> None:
        super().__init__(store)
        self._writer = conn
        self._cur = cur
        self._translate = translate
        self._append_in = append_in
        self._now: int | None = None

    @property
    def supports_sql(self) -> bool:
        return True

    @property
    def cursor(self) -> sqlite3.Cursor:
        """The cursor the transaction runs on (the store joins it for snapshots)."""
        return self._cur

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        cur = self._cur
        with self._translate():
            if self._now is None:
                row = cur.execute(sql.LAST_RECORDED_AT).fetchone()
                self._now = self.store._clock(row[0] if row else 0)
            cur.execute(sql.SAVEPOINT)
            try:
                if condition is None:
                    results = self._append_in(cur, batches, self._now)
                else:
                    results = self._append_in(cur, batches, self._now, condition)
            except BaseException:
                cur.execute(sql.ROLLBACK_TO_SAVEPOINT)
                cur.execute(sql.RELEASE_SAVEPOINT)
                raise
            cur.execute(sql.RELEASE_SAVEPOINT)
            return results

    def _checkpoint(self, name: str) -> int | None:
        row = self._one(sql.CHECKPOINT, (name,))
        return None if row is None else int(row[0])

    def _save_checkpoint(self, name: str, position: int, expected: int | None) -> bool:
        now = self.store._clock()
        with self._translate():
            if expected is None:
                cursor = self._cur.execute(sql.INSERT_CHECKPOINT, (name, position, now))
            else:
                cursor = self._cur.execute(sql.MOVE_CHECKPOINT, (position, now, name, expected))
            return cursor.rowcount == 1

    def _checkpoints(self) -> dict[str, int]:
        with self._translate():
            return {str(n): int(p) for n, p in self._cur.execute(sql.CHECKPOINTS).fetchall()}

    def _delete_checkpoint(self, name: str) -> None:
        self._execute(sql.DELETE_CHECKPOINT, (name,))

    def _record(self, name: str) -> bytes | None:
        row = self._one(sql.PROJECTION_RECORD, (name,))
        return None if row is None else bytes(row[0])

    def _save_record(self, name: str, data: bytes) -> None:
        self._execute(sql.SAVE_PROJECTION_RECORD, (name, data))

    def _delete_record(self, name: str) -> None:
        self._execute(sql.DELETE_PROJECTION_RECORD, (name,))

    def _records(self) -> list[tuple[str, bytes]]:
        return [(name, bytes(data)) for name, data in self._execute(sql.PROJECTION_RECORDS, ())]

    def _execute(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._translate():
            return self._cur.execute(statement, params).fetchall()

    def _one(self, statement: str, params: tuple[Any, ...]) -> Any:
        with self._translate():
            return self._cur.execute(statement, params).fetchone()

    def _connection(self) -> sqlite3.Connection:
        return self._writer
