"""The embedded SQLite backend (stdlib ``sqlite3``), eventkeep's zero-set-up default.

- WAL journal, ``synchronous=FULL`` by default: an acknowledged append survives power loss.
  ``synchronous="NORMAL"`` trades the last transactions before a power cut for speed (a process
  crash still loses nothing).
- Every write runs in ``BEGIN IMMEDIATE``, so writers from any number of OS processes queue on
  SQLite's write lock (waiting up to ``busy_timeout``) instead of failing mid-transaction.
- One writer at a time means positions are assigned in commit order: a reader that has read up
  to position P never later sees a new event at or below P.
- Triggers refuse UPDATE and DELETE on stored events.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eventkeep.backends.sqlite import sql
from eventkeep.codec import DEFAULT_MAX_EVENT_BYTES
from eventkeep.errors import (
    BackendUnavailableError,
    ConfigurationError,
    EventkeepError,
    IntegrityError,
    SchemaVersionError,
)
from eventkeep.events import TypeRegistry
from eventkeep.hashing import ChainRow, VerifyReport, verify_chains
from eventkeep.migrations import load_migrations
from eventkeep.planner import Head, PlannedRow, plan_append
from eventkeep.recorded import RecordedEvent
from eventkeep.store import (
    AppendResult,
    EventStore,
    PreparedAppend,
    Snapshot,
    StoredIdentity,
    StoreStats,
    StreamInfo,
)
from eventkeep.transaction import Transaction

__all__ = ["SQLiteStore"]

_record: Callable[..., RecordedEvent] = RecordedEvent

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_MAX_PARAMS = 500


class SQLiteStore(EventStore):
    """An event store in one SQLite file, shared safely by threads and OS processes."""

    def __init__(
        self,
        path: str | Path,
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
    ) -> None:
        super().__init__(registry=registry, max_event_bytes=max_event_bytes)
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ConfigurationError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}"
            )
        if not isinstance(busy_timeout, int | float) or busy_timeout < 0:
            raise ConfigurationError(f"busy_timeout must be seconds >= 0, got {busy_timeout!r}")
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.synchronous = mode
        self._lock = threading.RLock()
        with self._translate():
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
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
        """The one place sqlite3 exceptions become eventkeep errors."""
        try:
            yield
        except EventkeepError:
            raise
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(f"{self.url}: {exc}") from exc
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise BackendUnavailableError(
                    f"{self.url}: the database stayed locked by another writer longer than "
                    f"busy_timeout allows ({text})"
                ) from exc
            raise BackendUnavailableError(f"{self.url}: {text}") from exc
        except sqlite3.ProgrammingError as exc:
            raise BackendUnavailableError(f"{self.url}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise BackendUnavailableError(
                f"{self.url}: not a usable eventkeep database ({exc})"
            ) from exc

    def _configure(self, synchronous: str, busy_timeout: float) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() not in ("wal", "memory"):
            raise BackendUnavailableError(f"{self.url}: could not switch to WAL (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")

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
        from eventkeep.backends.sqlite.transaction import SQLiteTransaction

        joined = self.joined_transaction()
        if isinstance(joined, SQLiteTransaction):
            with self._translate():
                yield joined.cursor
        else:
            with self._write() as cur:
                yield cur

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        from eventkeep.backends.sqlite.transaction import SQLiteTransaction

        with self._write() as cur:
            yield SQLiteTransaction(self, cur)

    def _query(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock, self._translate():
            return self._conn.execute(statement, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writing ------------------------------------------------------------------------------

    def _append(self, batches: list[PreparedAppend]) -> list[AppendResult]:
        with self._write() as cur:
            row = cur.execute(sql.LAST_RECORDED_AT).fetchone()
            return self._append_in(cur, batches, self._clock(row[0] if row else 0))

    def _append_in(
        self, cur: sqlite3.Cursor, batches: list[PreparedAppend], now: int
    ) -> list[AppendResult]:
        """Plan and write ``batches`` in the write transaction open on ``cur``.

        The event ids are looked up only when the plan needs them: an expected version did not
        match, or the event-id index refused the insert (a retried append, or a reused id).
        """
        heads = self._heads(cur, batches)
        stored: dict[bytes, StoredIdentity] | None = None
        while True:
            plan = plan_append(batches, heads, stored)
            if plan.needs_ids:
                stored = self._stored_identities(cur, batches)
                continue
            if plan.conflict is not None:
                raise plan.conflict
            if not plan.writes:
                return plan.results(0)
            rows = plan.rows(now)
            cur.execute(sql.INSERT_SAVEPOINT)
            try:
                cur.executemany(sql.INSERT_EVENT, rows)
            except sqlite3.IntegrityError:
                cur.execute(sql.ROLLBACK_TO_INSERT_SAVEPOINT)
                cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
                if stored is not None:
                    raise
                stored = self._stored_identities(cur, batches)
                continue
            cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
            last = cur.execute(sql.LAST_INSERT_POSITION).fetchone()[0]
            first = last - len(rows) + 1
            results = plan.results(first)
            cur.executemany(
                sql.UPSERT_STREAM,
                [
                    (
                        result.stream_id,
                        result.version,
                        result.position,
                        self._last_hash(rows, result),
                    )
                    for result, step in zip(results, plan.outcomes, strict=True)
                    if not isinstance(step, AppendResult)
                ],
            )
            return results

    @staticmethod
    def _last_hash(rows: list[PlannedRow], result: AppendResult) -> bytes:
        for row in reversed(rows):
            if row.stream_id == result.stream_id:
                return row.hash
        raise AssertionError(f"no row written for {result.stream_id!r}")  # pragma: no cover

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

    # -- reading ------------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_id: str, low: int, high: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        statement = sql.READ_STREAM_BACKWARDS if backwards else sql.READ_STREAM_FORWARDS
        top = high if high is not None else 2**62
        rows = self._query(statement, (stream_id, low, top, limit))
        codec = self.codec
        return [_record(*row, codec) for row in rows]

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
        rows = self._query(sql.READ_ALL.format(where=where), tuple(params))
        codec = self.codec
        return [_record(*row, codec) for row in rows]

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
        with self._lock, self._translate():
            cur = self._conn.cursor()
            cur.execute("BEGIN")  # one snapshot for all the counts
            try:
                events = cur.execute(sql.COUNT_EVENTS).fetchone()[0]
                streams = cur.execute(sql.COUNT_STREAMS).fetchone()[0]
                head = cur.execute(sql.HEAD_POSITION).fetchone()[0]
                types = dict(cur.execute(sql.COUNT_BY_TYPE).fetchall())
            finally:
                cur.execute("COMMIT")
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

    def _verify(self) -> VerifyReport:
        with self._lock, self._translate():
            cur = self._conn.cursor()
            cur.execute("BEGIN")  # heads and rows from one snapshot
            try:
                heads = dict(cur.execute(sql.STREAM_HEADS).fetchall())
                rows = (ChainRow(*row) for row in cur.execute(sql.CHAIN_ROWS))
                return verify_chains(rows, heads)
            finally:
                cur.execute("COMMIT")


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
