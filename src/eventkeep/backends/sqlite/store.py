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
import copy
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eventkeep.backends.sqlite import dcb, keys, lifecycle, moving, sql
from eventkeep.backends.sqlite.transaction import SQLiteTransaction
from eventkeep.errors import (
    BackendUnavailableError,
    ConfigurationError,
    EventkeepError,
    IntegrityError,
    SchemaVersionError,
)
from eventkeep.store import (
    AppendResult,
    EventStore,
    PreparedAppend,
    Snapshot,
    StorageCheck,
    StoredIdentity,
    StoreStats,
    StreamInfo,
)
from eventkeep.store.anchors import AnchorHead, AnchorRow, AnchorSource
from eventkeep.store.base import Transaction
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES, Codec
from eventkeep.store.dcb import AppendCondition, Query
from eventkeep.store.events import TypeRegistry
from eventkeep.store.hashing import ChainRow, StreamHead, VerifyReport, verify_chains
from eventkeep.store.importing import ImportPlan
from eventkeep.store.lifecycle import (
    Operation,
    Removal,
    Selection,
    StreamMeta,
    chain_starts,
)
from eventkeep.store.lifecycle_store import Prepare
from eventkeep.store.migrations import load_migrations
from eventkeep.store.planner import Head, PlannedRow, new_heads, plan_append
from eventkeep.store.recorded import RecordedEvent, decode_tags
from eventkeep.store.shredding import ForgottenSubject, KeyStore
from eventkeep.store.tags import encode_tags
from eventkeep.store.validation import check_name, check_seconds

__all__ = ["SQLiteStore"]

_record: Callable[..., RecordedEvent] = RecordedEvent

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_MAX_PARAMS = 500
MAX_READERS = 32
"""Reader connections a store keeps open at most (one per thread that reads); a thread beyond
that opens a connection for each read and closes it afterwards."""
FETCH_TURN_WAIT = 0.002
"""Seconds a page read waits at most for another thread of the store to finish its page."""
_PRIVATE_DATABASES = ("", ":memory:")
"""Paths whose database is private to one connection (in memory, or a temporary file)."""


DEFAULT_FILE_MODE = 0o600
"""Permissions of a new database file (and its -wal and -shm files): owner only, as an event
store holds personal data. The ``file_mode`` store option changes them (``?file_mode=0640``)."""


def _check_file_mode(value: Any) -> int:
    """``file_mode`` as an int: octal text (``"0640"``) or an int (``0o640``), owner rw kept."""
    mode: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and value.strip():
        try:
            mode = int(value.strip(), 8)
        except ValueError:
            mode = None
    if mode is None or not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        raise ConfigurationError(
            "file_mode must be permission bits in octal from 0600 to 0777 that let the owner "
            f"read and write (e.g. 0600, 0640), got {value!r}"
        )
    return mode


class SQLiteStore(EventStore):
    """An event store in one SQLite file, shared safely by threads and OS processes."""

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
        self.file_mode = _check_file_mode(file_mode)
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
        self._readers = _Readers(self._connect, MAX_READERS)
        self._fetch_turn = threading.Lock()
        # Group commit: appends queued by threads, and whether one of them is writing a group.
        self._group = threading.Condition(threading.Lock())
        self._queued: list[_PendingAppend] = []
        self._leading = False
        self._waiting = 0  # threads waiting in the queue
        if not self._single:
            self._create_file()
        with self._translate():
            self._conn = self._connect()
        try:
            with self._translate():
                self._configure(mode, busy_timeout)
                self._migrate()
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

    def _create_file(self) -> None:
        """Create a new database file with ``file_mode`` (SQLite would make it 0644 under the
        usual umask); its -wal and -shm files take the database file's mode. An existing file
        keeps its mode. A missing directory is a ConfigurationError that names it."""
        if self.path.startswith("file:"):
            return  # a SQLite URI filename: SQLite opens it as it says
        directory = Path(self.path).parent
        if not directory.is_dir():
            raise ConfigurationError(
                f"{self.url}: the directory {directory} does not exist (eventkeep creates the "
                "database file, not its directory)"
            )
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
        except FileExistsError:
            return
        except OSError as exc:
            raise BackendUnavailableError(
                f"{self.url}: cannot create the database file ({exc.strerror})"
            ) from exc
        try:
            os.fchmod(fd, self.file_mode)  # exactly the mode asked for, whatever the umask
        finally:
            os.close(fd)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit (the store issues BEGIN itself); any thread may use it (a lock, or being
        # one thread's reader, keeps it to one at a time) and close it (close(), a thread's end).
        return sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )

    def _configure(self, synchronous: str, busy_timeout: float) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = self._switch_to_wal(busy_timeout)
        if str(mode).lower() not in ("wal", "memory"):
            raise BackendUnavailableError(f"{self.url}: could not switch to WAL (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # Savepoints (an append inside a transaction, the event-id check of an insert) keep the
        # pages they change in a sub-journal: in memory, not a temporary file written page by
        # page (14x the write calls of an append without it, measured).
        conn.execute("PRAGMA temp_store = MEMORY")

    def _switch_to_wal(self, busy_timeout: float) -> Any:
        """``PRAGMA journal_mode = WAL``, retried while another process holds the lock it needs.

        SQLite answers "database is locked" at once here, without its busy handler, when
        another connection is converting the same new file (processes opening a new store at
        once): retry, with growing pauses, for up to ``busy_timeout``.
        """
        deadline = time.monotonic() + busy_timeout
        pause = 0.001
        while True:
            try:
                return self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                busy = (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _migrate(self) -> None:
        migrations = load_migrations("eventkeep.backends.sqlite")
        latest = migrations[-1].version
        # An up-to-date schema needs no write lock: opening must not queue behind a writer.
        conn = self._conn
        if conn.execute(sql.MIGRATIONS_TABLE_EXISTS).fetchone() and self._check_schema(
            conn.execute(sql.SCHEMA_VERSION).fetchone()[0], latest
        ):
            return
        with self._write() as cur:
            cur.execute(sql.CREATE_MIGRATIONS)
            current = cur.execute(sql.SCHEMA_VERSION).fetchone()[0]
            self._check_schema(current, latest)
            for migration in migrations[current:]:
                for statement in _statements(migration.sql):
                    cur.execute(statement)
                cur.execute(sql.RECORD_MIGRATION, (migration.version, migration.name))

    def _check_schema(self, current: int, latest: int) -> bool:
        """True when the schema is current; raises when it is newer than this code knows."""
        if current > latest:
            raise SchemaVersionError(
                f"{self.url} has schema version {current}, but this eventkeep knows "
                f"versions up to {latest}; upgrade eventkeep to open it"
            )
        return bool(current == latest)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction holding SQLite's write lock from its first statement."""
        with self._lock, self._translate():
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                # Also when COMMIT itself fails: a transaction left open would keep the write
                # lock (every other writer locked out) and show the failed append to this store.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

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

    # -- writing ------------------------------------------------------------------------------

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Append in a write transaction shared, with its commit, with the appends other
        threads of this store make meanwhile (group commit).

        A thread that finds nobody writing leads: once it holds the write lock it takes every
        append queued by then (its own included) and writes them in one transaction. Threads
        that queue meanwhile wait, and one of them leads the next group.
        """
        with self._group:
            # Nobody leading, nobody queued, the writer free: write at once, without the queue
            # (threads that append meanwhile queue, and one of them leads the next group).
            alone = not self._leading and not self._queued and self._lock.acquire(blocking=False)
            if alone:
                self._leading = True
        if alone:
            try:
                with self._write() as cur:
                    now = self._clock(self._last_recorded_at(cur))
                    return self._append_with(cur, batches, now, condition)
            finally:
                self._lock.release()
                with self._group:
                    self._leading = False
                    if self._waiting:
                        self._group.notify_all()
        request = _PendingAppend(batches, condition)
        with self._group:
            self._queued.append(request)
            if self._leading:
                self._waiting += 1
                try:
                    while request.outcome is None and self._leading:
                        self._group.wait()
                except BaseException:  # interrupted while queued: not written, unless taken
                    if request in self._queued:
                        self._queued.remove(request)
                    raise
                finally:
                    self._waiting -= 1
                if request.outcome is not None:
                    return request.result()
            self._leading = True
        try:
            self._write_queued(request)
        finally:
            with self._group:
                self._leading = False
                if self._waiting:
                    self._group.notify_all()
        return request.result()

    def _write_queued(self, leader: _PendingAppend) -> None:
        """Write the queued appends in one transaction and give each its outcome.

        A conflict or a refused event id fails that append only (it has written nothing). A
        database error inside one append rolls the transaction back, and each append is then
        written alone, to get the outcome it would have had alone. When the transaction
        itself fails: without the write lock (busy_timeout) only the leader's append fails and
        the others wait for the next leader; a failed COMMIT fails them all (nothing written).
        """
        group: list[_PendingAppend] = []
        outcomes: list[list[AppendResult] | EventkeepError] = []
        try:
            try:
                with self._write() as cur:
                    with self._group:
                        group, self._queued = self._queued, []
                    floor = self._last_recorded_at(cur)
                    if len(group) == 1:  # alone: an error rolls back the whole transaction
                        first = group[0]
                        now = self._clock(floor)
                        outcomes.append(self._append_with(cur, first.batches, now, first.condition))
                    else:
                        for request in group:
                            now = self._clock(floor)
                            outcomes.append(
                                self._append_in_group(cur, request.batches, now, request.condition)
                            )
            except Exception as exc:
                if not group:
                    self._unqueue(leader)
                    leader.outcome = exc
                elif len(group) == 1 or len(outcomes) == len(group):
                    for n, request in enumerate(group):
                        request.outcome = exc if n == 0 else _copy_error(exc)
                else:
                    for request in group:
                        request.outcome = self._write_alone(request.batches, request.condition)
                return
            for request, outcome in zip(group, outcomes, strict=True):
                request.outcome = outcome
        except BaseException as exc:  # interrupted: tell the threads waiting for this group
            self._unqueue(leader)
            for request in group:
                if request.outcome is None:
                    request.outcome = BackendUnavailableError(
                        f"{self.url}: the append was not written: the thread writing it "
                        f"was interrupted ({exc!r})"
                    )
            raise

    def _unqueue(self, request: _PendingAppend) -> None:
        with self._group:
            if request in self._queued:
                self._queued.remove(request)

    def _write_alone(
        self, batches: list[PreparedAppend], condition: AppendCondition | None
    ) -> list[AppendResult] | Exception:
        try:
            with self._write() as cur:
                now = self._clock(self._last_recorded_at(cur))
                return self._append_with(cur, batches, now, condition)
        except Exception as exc:
            return exc

    def _append_in_group(
        self,
        cur: sqlite3.Cursor,
        batches: list[PreparedAppend],
        now: int,
        condition: AppendCondition | None,
    ) -> list[AppendResult] | EventkeepError:
        """``_append_in`` for one append of a group: a conflict or a refused event id is
        returned (that append's outcome), and the group goes on.

        No savepoint is needed: ``_append_in`` raises an ``EventkeepError`` only before it
        has written anything. Should that ever change, the error is raised instead, and the
        group is rolled back and written append by append.
        """
        conn = cur.connection
        changes = conn.total_changes
        try:
            return self._append_with(cur, batches, now, condition)
        except EventkeepError as exc:
            if conn.total_changes != changes:
                raise
            return exc

    def _append_with(
        self,
        cur: sqlite3.Cursor,
        batches: list[PreparedAppend],
        now: int,
        condition: AppendCondition | None,
    ) -> list[AppendResult]:
        """``_append_in``, passing the condition only when there is one."""
        if condition is None:
            return self._append_in(cur, batches, now)
        return self._append_in(cur, batches, now, condition)

    @staticmethod
    def _last_recorded_at(cur: sqlite3.Cursor) -> int:
        row = cur.execute(sql.LAST_RECORDED_AT).fetchone()
        return int(row[0]) if row else 0

    def _append_in(
        self,
        cur: sqlite3.Cursor,
        batches: list[PreparedAppend],
        now: int,
        condition: AppendCondition | None = None,
    ) -> list[AppendResult]:
        """Plan and write ``batches`` in the write transaction open on ``cur``.

        The event ids are looked up only when the plan needs them: an expected version did not
        match, or the event-id index refused the insert (a retried append, or a reused id).
        An ``EventkeepError`` (a conflict, a refused event id) is raised only before anything
        is written (group commit relies on it); database errors may come at any point.
        The condition is checked here, under the write lock: no append can come in between.
        """
        keys.store_new_keys(cur, batches, now)
        heads = self._heads(cur, batches)
        matched = None
        if condition is not None:
            statement, params = dcb.first_match(
                condition.fail_if_events_match, condition.after or 0
            )
            matched = cur.execute(statement, params).fetchone()[0]
        stored: dict[bytes, StoredIdentity] | None = None
        while True:
            plan = plan_append(batches, heads, stored, condition, matched)
            if plan.needs_ids:
                stored = self._stored_identities(cur, batches)
                continue
            if plan.conflict is not None:
                raise plan.conflict
            if not plan.writes:
                return plan.results(0)
            rows = plan.rows(now)
            try:
                last = self._insert(cur, rows)
            except sqlite3.IntegrityError:
                if stored is not None:
                    raise
                stored = self._stored_identities(cur, batches)
                continue
            first = last - len(rows) + 1
            results = plan.results(first)
            tagged = [
                (tag, first + offset, row.type)
                for offset, row in enumerate(rows)
                for tag in row.tags
            ]
            if tagged:
                cur.executemany(sql.INSERT_TAG, tagged)
            cur.executemany(
                sql.UPSERT_STREAM,
                [
                    (row.stream_id, row.version, first + offset, row.hash)
                    for offset, row in new_heads(rows)
                ],
            )
            return results

    @staticmethod
    def _insert(cur: sqlite3.Cursor, rows: list[PlannedRow]) -> int:
        """Insert ``rows``, all or none; returns the position of the last one."""
        floor = cur.execute(sql.POSITION_FLOOR).fetchone()[0]
        if floor is not None:  # the log's last events were removed: number above them
            first = int(floor) + 1
            return SQLiteStore._insert_at(cur, rows, range(first, first + len(rows)))
        if len(rows) == 1:  # one statement undoes itself when refused: no savepoint needed
            cur.execute(sql.INSERT_EVENT, _params(rows[0]))
            last = cur.lastrowid
            assert last is not None
            return last
        cur.execute(sql.INSERT_SAVEPOINT)
        try:
            cur.executemany(sql.INSERT_EVENT, [_params(row) for row in rows])
        except sqlite3.IntegrityError:
            cur.execute(sql.ROLLBACK_TO_INSERT_SAVEPOINT)
            cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
            raise
        cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
        return int(cur.execute(sql.LAST_INSERT_POSITION).fetchone()[0])

    @staticmethod
    def _insert_at(cur: sqlite3.Cursor, rows: list[PlannedRow], positions: Sequence[int]) -> int:
        """Insert ``rows`` at ``positions`` (ascending), all or none; returns the last one."""
        cur.execute(sql.INSERT_SAVEPOINT)
        try:
            cur.executemany(
                sql.INSERT_EVENT_AT,
                [(position, *_params(row)) for position, row in zip(positions, rows, strict=True)],
            )
        except sqlite3.IntegrityError:
            cur.execute(sql.ROLLBACK_TO_INSERT_SAVEPOINT)
            cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
            raise
        cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
        return positions[-1]

    @staticmethod
    def _heads(cur: sqlite3.Cursor, batches: list[PreparedAppend]) -> dict[str, Head]:
        heads: dict[str, Head] = {}
        for batch in batches:
            row = cur.execute(sql.STREAM_HEAD, (batch.stream_id,)).fetchone()
            if row is not None:
                heads[batch.stream_id] = Head(row[0], row[1])
        return heads

    @staticmethod
    def _stored_identities(
        cur: sqlite3.Cursor, batches: list[PreparedAppend]
    ) -> dict[bytes, StoredIdentity]:
        ids = [ev.event_id for batch in batches for ev in batch.events]
        stored: dict[bytes, StoredIdentity] = {}
        for start in range(0, len(ids), _MAX_PARAMS):
            chunk = ids[start : start + _MAX_PARAMS]
            statement = sql.STORED_IDENTITIES.format(marks=",".join("?" * len(chunk)))
            for row in cur.execute(statement, chunk):
                stored[row[0]] = StoredIdentity(*row)
        return stored

    # -- moving history (eventkeep.moving) ----------------------------------------------------

    def _export_page(self, after: int, limit: int, prefix: str | None) -> list[ChainRow]:
        statement, params = moving.export_statement(after, limit, prefix)
        return moving.chain_rows(self._query(statement, params, page=True))

    def _import_rows(
        self, rows: list[ChainRow], removed_floor: int = 0, ahead: ImportPlan | None = None
    ) -> int:
        with self._write() as cur:
            return moving.import_rows(cur, rows, removed_floor, self._insert_at, ahead)

    def _last_event_position(self) -> int:
        rows = self._query(sql.LAST_EVENT_POSITION)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    # -- reading ------------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_id: str, low: int, high: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        statement = sql.READ_STREAM_BACKWARDS if backwards else sql.READ_STREAM_FORWARDS
        top = high if high is not None else 2**62
        rows = self._query(statement, (stream_id, low, top, limit), page=True)
        return _records(rows, self.codec)

    def _read_all_page(
        self, after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None
    ) -> list[RecordedEvent]:
        where = ""
        params: list[Any] = [after]
        if types is not None:
            where += sql.WHERE_TYPES.format(marks=",".join("?" * len(types)))
            params.extend(types)
        if prefix is not None:
            where += sql.WHERE_PREFIX
            params.extend((prefix, len(prefix), prefix))
        params.append(limit)
        rows = self._query(sql.READ_ALL.format(where=where), tuple(params), page=True)
        return _records(rows, self.codec)

    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        statement, params = dcb.read_page(query, after, limit)
        return _records(self._query(statement, tuple(params), page=True), self.codec)

    def _stream_version(self, stream_id: str) -> int:
        rows = self._query(sql.STREAM_VERSION, (stream_id,))
        return int(rows[0][0]) if rows else 0

    def _list_streams(self, prefix: str, limit: int | None) -> list[StreamInfo]:
        rows = self._query(
            sql.LIST_STREAMS, (prefix, len(prefix), prefix, -1 if limit is None else limit)
        )
        return [StreamInfo(*row) for row in rows]

    def _head_position(self) -> int:
        return int(self._query(sql.HEAD_POSITION)[0][0])

    def _stats(self) -> StoreStats:
        with self._snapshot() as cur:  # one snapshot for all the counts
            events = cur.execute(sql.COUNT_EVENTS).fetchall()[0][0]
            streams = cur.execute(sql.COUNT_STREAMS).fetchall()[0][0]
            head = cur.execute(sql.HEAD_POSITION).fetchall()[0][0]
            types = dict(cur.execute(sql.COUNT_BY_TYPE).fetchall())
        return StoreStats(events, streams, head, types)

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        with self._write_or_join() as cur:
            cur.execute(sql.SAVE_SNAPSHOT, snapshot)

    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None:
        rows = self._query(sql.LOAD_SNAPSHOT, (stream_id, max_version))
        return Snapshot(*rows[0]) if rows else None

    def _delete_snapshots(self, prefix: str) -> int:
        with self._write_or_join() as cur:
            return cur.execute(sql.DELETE_SNAPSHOTS, (prefix, len(prefix), prefix)).rowcount

    def _verify(self, progress: Callable[[int], object] | None = None) -> VerifyReport:
        with self._snapshot() as cur:  # heads and rows from one snapshot
            heads = {
                stream_id: StreamHead(version, position, bytes(digest))
                for stream_id, version, position, digest in cur.execute(sql.STREAM_HEADS)
            }
            removed = [lifecycle.removal_of(row) for row in cur.execute(lifecycle.REMOVALS)]
            rows = (_chain_row(row) for row in cur.execute(sql.CHAIN_ROWS))
            return verify_chains(rows, heads, chain_starts(removed), progress)

    def _check_storage(self) -> StorageCheck:
        with self._snapshot() as cur:
            found = [str(row[0]) for row in cur.execute(sql.INTEGRITY_CHECK)]
            missing, extra = cur.execute(sql.TAG_INDEX_DIFFERENCES).fetchall()[0]
        problems = [] if found == ["ok"] else [f"database file: {text}" for text in found]
        if missing or extra:
            problems.append(
                f"tag index: {missing} tags of stored events are missing from event_tags and "
                f"{extra} entries name no such tag of an event (queries and append conditions "
                "would be wrong)"
            )
        return StorageCheck(
            checked=(
                "the database file (PRAGMA integrity_check)",
                "the tag index against the events' tags",
            ),
            problems=tuple(problems),
        )

    @contextlib.contextmanager
    def _anchor_source(self) -> Iterator[AnchorSource]:
        with self._snapshot() as cur:
            yield _CursorSource(cur)

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


class _CursorSource:
    """Anchor rows read through one snapshot's cursor."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def head_position(self) -> int:
        return int(self._cur.execute(sql.HEAD_POSITION).fetchall()[0][0])

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        for position, stream_id, version, digest in self._cur.execute(
            sql.ANCHOR_ROWS, (after, upto)
        ):
            yield AnchorRow(position, stream_id, version, bytes(digest))

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        for stream_id, version, position, digest in self._cur.execute(sql.ANCHOR_HEADS, (upto,)):
            yield AnchorHead(stream_id, version, position, bytes(digest))


class _PendingAppend:
    """One thread's append, queued for the next group commit; ``outcome`` is set once it is
    written (its results) or refused (the error to raise)."""

    __slots__ = ("batches", "condition", "outcome")

    def __init__(self, batches: list[PreparedAppend], condition: AppendCondition | None) -> None:
        self.batches = batches
        self.condition = condition
        self.outcome: list[AppendResult] | BaseException | None = None

    def result(self) -> list[AppendResult]:
        outcome = self.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome


class _Reader:
    """Holds a thread's reader connection: when the thread ends, this goes and closes it."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class _Readers:
    """Reader connections, one per thread (at most ``limit``), every one closed by ``close``.

    A thread's connection lives in a thread-local holder: when the thread ends, the holder goes
    and a finalizer closes the connection. ``close`` closes those still open. Nothing here keeps
    the store alive: a store dropped without ``close`` takes its connections with it.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], limit: int) -> None:
        self._connect = connect
        self._limit = limit
        self._local = threading.local()
        # Reentrant: a thread's end may close its reader from within this lock (a finalizer).
        self._lock = threading.RLock()
        self._open: dict[int, tuple[sqlite3.Connection, weakref.finalize[Any, Any]]] = {}
        self._closed = False

    def get(self) -> tuple[sqlite3.Connection, bool]:
        """This thread's reader connection, and True when it is one for this read only (the
        caller closes it): the limit is reached."""
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is not None:
            return reader.conn, False
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        conn = self._connect()
        try:
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        with self._lock:
            if self._closed:
                conn.close()
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if len(self._open) >= self._limit:
                return conn, True
            reader = _Reader(conn)
            key = id(reader)
            ended = weakref.finalize(reader, _reader_ended, weakref.ref(self), key, conn)
            self._open[key] = (conn, ended)
        self._local.reader = reader
        return conn, False

    def forget(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            readers = list(self._open.values())
            self._open.clear()
            self._local = threading.local()  # drops the holders of threads still running
        for conn, ended in readers:
            ended.detach()
            conn.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)


def _reader_ended(readers: weakref.ref[_Readers], key: int, conn: sqlite3.Connection) -> None:
    """Close the reader connection of a thread that has ended (or of a dropped store)."""
    owner = readers()
    if owner is not None:
        owner.forget(key)
    conn.close()


def _chain_row(row: Any) -> ChainRow:
    s, v, p, e, t, sv, r, d, m, h, tags = row
    return ChainRow(s, v, p, e, t, sv, r, d, m, h, decode_tags(tags))


def _params(row: PlannedRow) -> tuple[Any, ...]:
    """INSERT_EVENT's parameters: the row, its tags encoded (NULL when it has none)."""
    tags = row.tags
    return (*row[:9], encode_tags(tags) if tags else None)


def _records(rows: list[Any], codec: Codec) -> list[RecordedEvent]:
    """Rows of ``sql._RECORD`` columns as recorded events."""
    return [
        _record(s, v, p, e, t, sv, d, m, r, codec, tags)
        for s, v, p, e, t, sv, d, m, r, tags in rows
    ]


def _copy_error(exc: Exception) -> Exception:
    """A copy of ``exc`` for each thread that raises it (raising adds to its traceback)."""
    try:
        clone = copy.copy(exc)
    except Exception:  # an exception that cannot be rebuilt from its arguments: share it
        return exc
    clone.__cause__ = exc.__cause__
    return clone


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (trigger bodies hold semicolons)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not pending.strip():
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ConfigurationError(f"migration ends in an incomplete statement: {pending.strip()!r}")
