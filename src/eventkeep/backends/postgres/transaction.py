"""The PostgreSQL store's transaction: one database transaction on one pooled connection.

- Appends go through the backend's write path (the same checks, hash chain and idempotency as
  ``append``), each call in a savepoint so that a ConcurrencyError undoes that call only. The
  first append takes the sequencer's lock and the transaction holds it until it ends, numbering
  its events as it writes them: append results carry positions, handlers later in the
  transaction read them, and the events become visible already numbered at commit
  (``writer.append_in_transaction``; ``docs/postgres.md``, "Store transactions").
- Checkpoints: a compare-and-set ``UPDATE`` (or ``INSERT ... ON CONFLICT DO NOTHING``), whose
  row count tells a conflict, as on SQLite.
- Projection records are read ``FOR UPDATE``; a record that does not exist yet is created under
  an advisory lock of its name, so two runners creating it are serialized too.
- ``execute`` takes ``?`` placeholders (see :func:`to_psycopg`); ``connection`` is the psycopg
  connection itself.
"""

from __future__ import annotations

import functools
from typing import Any

import psycopg

from eventkeep.backends.postgres import sql, writer
from eventkeep.backends.postgres.connection import Database
from eventkeep.store import AppendResult, PreparedAppend
from eventkeep.store.base import EventStore, Transaction
from eventkeep.store.dcb import AppendCondition

__all__ = ["PostgresTransaction", "to_psycopg"]


class PostgresTransaction(Transaction):
    def __init__(self, store: EventStore, db: Database, conn: psycopg.Connection[Any]) -> None:
        super().__init__(store)
        self._db = db
        self._conn = conn

    @property
    def supports_sql(self) -> bool:
        return True

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        with self._db.translate():
            return writer.append_in_transaction(self._conn, batches, condition)

    def _checkpoint(self, name: str) -> int | None:
        row = self._one(sql.CHECKPOINT, (name,))
        return None if row is None else int(row[0])

    def _save_checkpoint(self, name: str, position: int, expected: int | None) -> bool:
        with self._db.translate():
            if expected is None:
                cur = self._conn.execute(sql.INSERT_CHECKPOINT, (name, position))
            else:
                cur = self._conn.execute(sql.MOVE_CHECKPOINT, (position, name, expected))
            return cur.rowcount == 1

    def _checkpoints(self) -> dict[str, int]:
        with self._db.translate():
            rows = self._conn.execute(sql.CHECKPOINTS).fetchall()
        return {str(name): int(position) for name, position in rows}

    def _delete_checkpoint(self, name: str) -> None:
        with self._db.translate():
            self._conn.execute(sql.DELETE_CHECKPOINT, (name,))

    def _record(self, name: str) -> bytes | None:
        row = self._one(sql.PROJECTION_RECORD, (name,))
        if row is None:
            with self._db.translate():
                self._conn.execute(sql.RECORD_NAME_LOCK, (name,))
            row = self._one(sql.PROJECTION_RECORD, (name,))  # a new snapshot, after the lock
        return None if row is None else bytes(row[0])

    def _save_record(self, name: str, data: bytes) -> None:
        with self._db.translate():
            self._conn.execute(sql.SAVE_PROJECTION_RECORD, (name, data))

    def _delete_record(self, name: str) -> None:
        with self._db.translate():
            self._conn.execute(sql.DELETE_PROJECTION_RECORD, (name,))

    def _records(self) -> list[tuple[str, bytes]]:
        with self._db.translate():
            rows = self._conn.execute(sql.PROJECTION_RECORDS).fetchall()
        return [(str(name), bytes(data)) for name, data in rows]

    def _execute(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._db.translate():
            if params:
                cur = self._conn.execute(to_psycopg(statement), params)
            else:
                cur = self._conn.execute(statement)
            return cur.fetchall() if cur.description is not None else []

    def _one(self, statement: str, params: tuple[Any, ...]) -> Any:
        with self._db.translate():
            return self._conn.execute(statement, params).fetchone()

    def _connection(self) -> psycopg.Connection[Any]:
        return self._conn


@functools.lru_cache(maxsize=1024)
def to_psycopg(statement: str) -> str:
    """``statement`` with its ``?`` placeholders as psycopg's ``%s`` (and ``%`` as ``%%``).

    Cached: a projection runs the same few statements for every event, and the same converted
    text also lets psycopg prepare them on the server.

    A ``?`` inside a string literal (``'...'``, ``E'...'``, ``$tag$...$tag$``), a quoted
    identifier or a comment is left alone. Every other ``?`` is a placeholder, so a statement
    with parameters cannot use PostgreSQL's jsonb ``?``, ``?|`` and ``?&`` operators: write
    ``jsonb_exists(data, 'key')``, ``jsonb_exists_any`` and ``jsonb_exists_all`` instead, or
    use ``tx.connection`` with psycopg's own ``%s`` placeholders. (A statement without
    parameters is sent exactly as written.)
    """
    out: list[str] = []
    i, n = 0, len(statement)
    while i < n:
        c = statement[i]
        if c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        elif c in "'\"":
            end = _quoted_end(statement, i, escapes=c == "'" and _e_string(statement, i))
            out.append(statement[i:end].replace("%", "%%"))
            i = end
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            end = n if end < 0 else end
            out.append(statement[i:end].replace("%", "%%"))
            i = end
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(statement[i:end].replace("%", "%%"))
            i = end
        elif c == "$" and (tag := _dollar_tag(statement, i)) is not None:
            end = statement.find(tag, i + len(tag))
            end = n if end < 0 else end + len(tag)
            out.append(statement[i:end].replace("%", "%%"))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _e_string(statement: str, i: int) -> bool:
    """True if the quote at ``i`` opens an escape string (``E'...'``)."""
    if i == 0 or statement[i - 1] not in "eE":
        return False
    return i == 1 or not (statement[i - 2].isalnum() or statement[i - 2] == "_")


def _quoted_end(statement: str, i: int, *, escapes: bool) -> int:
    """The index just past the quoted text starting at ``i`` (a doubled quote stays inside)."""
    quote = statement[i]
    j = i + 1
    n = len(statement)
    while j < n:
        c = statement[j]
        if escapes and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and statement[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _dollar_tag(statement: str, i: int) -> str | None:
    """The ``$tag$`` opening a dollar-quoted string at ``i``, if one does (not ``$1``)."""
    if i > 0 and (statement[i - 1].isalnum() or statement[i - 1] == "_"):
        return None
    j = i + 1
    while j < len(statement) and (statement[j].isalnum() or statement[j] == "_"):
        j += 1
    if j >= len(statement) or statement[j] != "$":
        return None
    tag = statement[i : j + 1]
    if len(tag) > 2 and tag[1].isdigit():
        return None
    return tag
