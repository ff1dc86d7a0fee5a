"""The embedded SQLite backend (stdlib ``sqlite3``), eventkeep's zero-set-up default.

- WAL journal, ``synchronous=FULL`` by default: an acknowledged append survives power loss.
  ``synchronous="NORMAL"`` trades the last transactions before a power cut for speed (a process
  crash still loses nothing).
- Every write runs in ``BEGIN IMMEDIATE``, so writers from any number of OS processes queue on
  SQLite's write lock (waiting up to ``busy_timeout``) instead of failing mid-transaction.
- One writer at a time means positions are assigned in commit order: a reader that has read up
  to position P never later sees a new event at or below P.
- Triggers refuse UPDATE and DELETE on stored events.

Connections. A store object has one *writer* connection: every write and every
``store.transaction()`` runs on it, one at a time (a lock serializes the threads of this
process, SQLite's write lock the processes). Appends that threads make at the same time share
one transaction and one commit (group commit: one fsync for all); a conflict fails that append
only. Reads run on *reader* connections, one per thread
(read-only: ``PRAGMA query_only``), so that in WAL mode a read never waits for a writer, in this
process or another:

- a single-statement read sees the last committed state; a read made of several statements
  (``stats``, ``verify``, ``projection_state``) runs in one read transaction, one snapshot;
- a read on a thread that has a store transaction open runs inside that transaction (on the
  writer connection) and sees its uncommitted writes; other threads see them after the commit;
- paged reads (``read_stream``, ``read_all``) fetch each page with one statement; pages are
  keyed by version or position, which never change once written, so no page misses or repeats
  an event (an event committed meanwhile may show up on a later page);
- a thread's reader connection is closed when the thread ends, all of them by ``close()``; at
  most ``MAX_READERS`` are kept, and a thread beyond that opens one for each read;
- threads of one store take turns fetching pages of events, but wait at most
  ``FETCH_TURN_WAIT`` for one another: CPython's ``sqlite3`` releases the GIL for every row,
  and threads fetching at the same time otherwise spend more CPU handing the GIL over than
  reading. (Fetching a page as one row, a JSON array built by SQLite, avoids the hand-overs but
  measured 0.51-0.70x on single-threaded reads of 256 B and 2 KB events: the escaping costs more.)

An in-memory database (``:memory:``) is private to its connection, so there the store keeps
one connection for everything, and reads wait for another thread's open transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eventkeep.backends.sqlite import keys, lifecycle, moving, opening, sql, writing
from eventkeep.backends.sqlite.group_commit import GroupCommit
from eventkeep.backends.sqlite.opening import DEFAULT_FILE_MODE, SYNCHRONOUS_MODES
from eventkeep.backends.sqlite.readers import MAX_READERS, Readers
from eventkeep.backends.sqlite.reading import SQLiteReads
from eventkeep.backends.sqlite.transaction import SQLiteTransaction
from eventkeep.errors import (
    BackendUnavailableError,
    ConfigurationError,
    EventkeepError,
    IntegrityError,
)
from eventkeep.store import (
    AppendResult,
    EventStore,
    PreparedAppend,
    Snapshot,
)
from eventkeep.store.base import Transaction
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES
from eventkeep.store.dcb import AppendCondition
from eventkeep.store.events import TypeRegistry
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan
from eventkeep.store.lifecycle import (
    Operation,
    Removal,
    Selection,
    StreamMeta,
)
from eventkeep.store.lifecycle_store import Prepare
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.shredding import ForgottenSubject, KeyStore
from eventkeep.store.validation import check_name, check_seconds

__all__ = ["DEFAULT_FILE_MODE", "MAX_READERS", "SYNCHRONOUS_MODES", "SQLiteStore"]

_record: Callable[..., RecordedEvent] = RecordedEvent

FETCH_TURN_WAIT = 0.002
"""Seconds a page read waits at most for another thread of the store to finish its page."""
_PRIVATE_DATABASES = ("", ":memory:")
"""Paths whose database is private to one connection (in memory, or a temporary file)."""


class SQLiteStore(GroupCommit, SQLiteReads, EventStore):
    """An event store in one SQLite file, shared safely by threads and OS processes.

    Its parts: :mod:`~eventkeep.backends.sqlite.opening` (file, settings, migrations),
    :mod:`~eventkeep.backends.sqlite.readers` (reader connections),
    :mod:`~eventkeep.backends.sqlite.reading` (the read primitives),
    :mod:`~eventkeep.backends.sqlite.group_commit` (``_append``),
    :mod:`~eventkeep.backends.sqlite.writing` (``_append_in``: plan and insert), and the SQL of
    :mod:`~eventkeep.backends.sqlite.sql`, ``dcb``, ``lifecycle``, ``moving`` and ``keys``.
    """

    _stores_keys_in_append = True  # see _append_in and keys.store_new_keys

    def __init__(
        self,
        path: str | Path,
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
        file_mode: int | str = DEFAULT_FILE_MODE,
        archive_dir: str | Path | None = None,
        key_store: KeyStore | None = None,
    ) -> None:
        super().__init__(registry=registry, max_event_bytes=max_event_bytes, key_store=key_store)
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ConfigurationError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}"
            )
        check_seconds(busy_timeout, what="busy_timeout", error=ConfigurationError)
        self.file_mode = opening.check_file_mode(file_mode)
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        # Archives of removed events: by default a directory next to the database file.
        beside = None
        if self.path not in _PRIVATE_DATABASES and not self.path.startswith("file:"):
            beside = Path(f"{self.path}-archives")
        self._set_archive_dir(archive_dir, beside)
        self.synchronous = mode
        self._busy_timeout = float(busy_timeout)
        # The writer connection and the lock that gives it to one thread at a time.
        self._lock = threading.RLock()
        # One connection for everything when no other connection can see the database.
        self._single = self.path in _PRIVATE_DATABASES
        self._readers = Readers(self._connect, MAX_READERS)
        self._fetch_turn = threading.Lock()
        self._start_group_commit()
        self._known = writing.Known()
        if not self._single:
            opening.create_file(self.path, self.url, self.file_mode)
        with self._translate():
            self._conn = self._connect()
        try:
            with self._translate():
                opening.configure(self._conn, self.url, mode, busy_timeout)
                opening.migrate(self._conn, self.url, self._write)
        except BaseException:
            self._conn.close()
            raise

    # -- connection, errors, migrations -------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """sqlite3 exceptions raised in the block become eventkeep errors (``_error``)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> EventkeepError:
        """The one place a sqlite3 exception becomes an eventkeep error."""
        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityError(f"{self.url}: {exc}")
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in text or "busy" in text:
                return BackendUnavailableError(
                    f"{self.url}: the database stayed locked by another writer longer than "
                    f"busy_timeout allows ({text})"
                )
            return BackendUnavailableError(f"{self.url}: {text}")
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):
            return BackendUnavailableError(f"{self.url}: {text}")
        return BackendUnavailableError(f"{self.url}: not a usable eventkeep database ({text})")

    def _connect(self) -> sqlite3.Connection:
        # Autocommit (the store issues BEGIN itself); any thread may use it (a lock, or being
        # one thread's reader, keeps it to one at a time) and close it (close(), a thread's end).
        return sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )

    @contextlib.contextmanager
    def _write(self, *, appending: bool = False) -> Iterator[sqlite3.Cursor]:
        """A write transaction holding SQLite's write lock from its first statement.

        ``appending``: it only appends (group commit), through ``writing.append_in`` with the
        store's :class:`~eventkeep.backends.sqlite.writing.Known`, checked here first; any
        other write transaction, and any that rolls back, makes the store forget it."""
        known = self._known
        with self._lock, self._translate():
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if appending:
                    known.check(cur)
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                known.forget()
                # Also when COMMIT itself fails: a transaction left open would keep the write
                # lock (every other writer locked out) and show the failed append to this store.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                if not appending:
                    known.forget()

    @contextlib.contextmanager
    def _write_or_join(self) -> Iterator[sqlite3.Cursor]:
        """The cursor of this thread's open store transaction, or a write transaction of its own:
        a write on a thread inside a transaction commits or rolls back with it."""
        joined = self.joined_transaction()
        if isinstance(joined, SQLiteTransaction):
            with self._translate():
                yield joined.cursor
        else:
            with self._write() as cur:
                yield cur

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._write() as cur:
            yield SQLiteTransaction(
                self, self._conn, cur, translate=self._translate, append_in=self._append_in
            )

    def _query(
        self, statement: str, params: tuple[Any, ...] = (), *, page: bool = False
    ) -> list[Any]:
        """The rows of one read statement: it sees one snapshot, and never waits for a writer
        (except on an in-memory database, or inside this thread's own transaction).

        ``page``: many rows; take turns with this store's other threads fetching pages (waiting
        ``FETCH_TURN_WAIT`` at most), since every row hands the GIL over. Writers never wait.
        """
        joined = self.joined_transaction()
        try:
            if isinstance(joined, SQLiteTransaction):  # on the writer, beside the tx's cursor
                return joined.cursor.connection.execute(statement, params).fetchall()
            if self._single:
                with self._lock:
                    return self._conn.execute(statement, params).fetchall()
            conn, own = self._readers.get()
            turn = page and self._fetch_turn.acquire(timeout=FETCH_TURN_WAIT)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                if turn:
                    self._fetch_turn.release()
                if own:
                    conn.close()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Cursor]:
        """A cursor whose statements all read one snapshot: a read transaction on this thread's
        reader connection, or this thread's own open transaction (its writes included)."""
        joined = self.joined_transaction()
        if isinstance(joined, SQLiteTransaction):
            with self._translate():
                cur = joined.cursor.connection.cursor()
                try:
                    yield cur
                finally:
                    cur.close()
            return
        with contextlib.ExitStack() as stack:
            if self._single:
                stack.enter_context(self._lock)
            stack.enter_context(self._translate())
            if self._single:
                conn = self._conn
            else:
                conn, own = self._readers.get()
                if own:
                    stack.callback(conn.close)
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                cur.close()  # resets a statement left unfinished, so that ROLLBACK ends the read
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the reader connections, then the writer (after a transaction in progress)."""
        self._readers.close()
        with self._lock:
            self._conn.close()

    # -- writing (group commit: eventkeep.backends.sqlite.group_commit) ------------------------

    def _append_in(
        self,
        cur: sqlite3.Cursor,
        batches: list[PreparedAppend],
        now: int,
        condition: AppendCondition | None = None,
        known: writing.Known | None = None,
    ) -> list[AppendResult]:
        """Plan and write ``batches`` on ``cur`` (see ``writing.append_in``); ``known`` only
        from group commit (a store transaction's own SQL may have changed anything)."""
        return writing.append_in(cur, batches, now, condition, known)

    # -- moving history (eventkeep.moving) ----------------------------------------------------

    def _export_page(self, after: int, limit: int, prefix: str | None) -> list[ChainRow]:
        statement, params = moving.export_statement(after, limit, prefix)
        return moving.chain_rows(self._query(statement, params, page=True))

    def _import_rows(
        self, rows: list[ChainRow], removed_floor: int = 0, ahead: ImportPlan | None = None
    ) -> int:
        with self._write() as cur:
            return moving.import_rows(cur, rows, removed_floor, writing.insert_at, ahead)

    def _last_event_position(self) -> int:
        rows = self._query(sql.LAST_EVENT_POSITION)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    # -- snapshots ----------------------------------------------------------------------------

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        with self._write_or_join() as cur:
            cur.execute(sql.SAVE_SNAPSHOT, snapshot)

    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None:
        rows = self._query(sql.LOAD_SNAPSHOT, (stream_id, max_version))
        return Snapshot(*rows[0]) if rows else None

    def _delete_snapshots(self, prefix: str) -> int:
        with self._write_or_join() as cur:
            return cur.execute(sql.DELETE_SNAPSHOTS, (prefix, len(prefix), prefix)).rowcount

    # -- lifecycle (see eventkeep.store.lifecycle_store and backends.sqlite.lifecycle) ---------

    def _stream_meta(self, stream_id: str) -> StreamMeta | None:
        rows = self._query(lifecycle.STREAM_META, (stream_id,))
        return lifecycle.meta_of(rows[0]) if rows else None

    def _stream_metas(self) -> list[tuple[str, StreamMeta]]:
        rows = self._query(lifecycle.STREAM_METAS)
        return [(row[0], lifecycle.meta_of(row[1:])) for row in rows]

    def _save_stream_meta(self, stream_id: str, meta: StreamMeta) -> None:
        with self._write_or_join() as cur:
            lifecycle.save_meta(cur, stream_id, meta)

    def _operations(self) -> list[Operation]:
        return [lifecycle.operation_of(row) for row in self._query(lifecycle.OPERATIONS)]

    def _removals(self, stream_id: str | None) -> list[Removal]:
        if stream_id is None:
            rows = self._query(lifecycle.REMOVALS)
        else:
            rows = self._query(lifecycle.REMOVALS_OF, (stream_id,))
        return [lifecycle.removal_of(row) for row in rows]

    def _lifecycle_write(
        self, selection: Selection | None, stream_id: str | None, prepare: Prepare
    ) -> Operation | None:
        with self._write() as cur:
            return lifecycle.remove(cur, selection, stream_id, prepare)

    def _carry_operation(self, operation: Operation, removals: list[Removal]) -> bool:
        with self._write() as cur:
            return lifecycle.carry_operation(cur, operation, removals)

    def _carry_heads(self, removals: list[Removal]) -> int:
        with self._write() as cur:
            return lifecycle.carry_heads(cur, removals)

    # -- checkpoints and projection records, read without the write lock ---------------------

    def checkpoint(self, name: str) -> int | None:
        """The position saved under checkpoint ``name``, or None if there is none.

        Like ``tx.checkpoint(name)``, without opening a transaction: it takes no write lock and
        waits for no writer. On a thread with a transaction open it reads inside it.
        """
        rows = self._query(sql.CHECKPOINT, (check_name(name, what="checkpoint name"),))
        return int(rows[0][0]) if rows else None

    def projection_state(self) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
        """Every projection record (name and opaque bytes, sorted by name) and every checkpoint
        (name to position), read from one snapshot without the write lock (for status views;
        anything that changes a record or checkpoint reads it inside a transaction)."""
        with self._snapshot() as cur:
            records = [(name, bytes(data)) for name, data in cur.execute(sql.PROJECTION_RECORDS)]
            checkpoints = {name: int(pos) for name, pos in cur.execute(sql.CHECKPOINTS)}
        return records, checkpoints

    # -- erasure (see keys.py) -----------------------------------------------------------------

    def _default_key_store(self) -> KeyStore:
        return keys.SQLiteKeyStore(self)

    def _log_forget(
        self, subject: str, at_us: int, by: str, reason: str, had_key: bool
    ) -> ForgottenSubject:
        return keys.log_forget(self, subject, at_us, by, reason, had_key)

    def _forget_log(self, after: int) -> list[ForgottenSubject]:
        return keys.forget_log(self, after)

    def _delete_snapshots_holding(self, needle: bytes) -> int:
        return keys.delete_snapshots_holding(self, needle)
