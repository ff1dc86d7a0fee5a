"""The PostgreSQL backend: many writers at once, one global log readers can trust.

- psycopg 3 with a ``psycopg_pool`` connection pool; all tables in one schema per store
  (``schema=``, default ``eventkeep``), so several stores share a database without touching each
  other's tables.
- An append reads its streams' heads without a lock, then inserts its events in one statement
  and transaction that numbers them under the sequencer's lock, held only from its grant to the
  commit, on the server; so positions follow commit order and a reader never skips an event
  (``writer.py``, ``migrations/0004_uncontended_numbering.sql``, ``docs/postgres.md``).
- Events keep their exact JSON bytes (hashed and read back); the view ``events_json`` gives
  queries their ``jsonb`` (migration 0015); triggers refuse UPDATE (except the one-time
  numbering of rows an older eventkeep left unnumbered), DELETE and TRUNCATE.
- Group commit (``group_commit=True``, the default): an append that waited for the sequencer's
  lock commits asynchronously under it and is acknowledged after a second, synchronous commit
  whose WAL flush concurrent appends share; reads of the primary flush what they return first
  (``durable.py``, ``migrations/0017_group_commit.sql``).
- ``wait_for_events`` wakes readers with LISTEN/NOTIFY, with a bounded poll fallback.
- ``read_url=`` (or ``read_host=``/``read_port=``): reads of the log served by a streaming
  replica, writes by the primary, each store object seeing its own writes (``replica.py``).
- ``transaction()`` runs one database transaction on one pooled connection
  (``transaction.py``); while it is open, reads by the same thread go through it, so they see
  what it wrote (as on SQLite and in memory) and never wait for the sequencer lock it holds.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pg_sql

from eventkeep.backends.postgres import bulk, keys, lifecycle, moving, plans, sql, writer
from eventkeep.backends.postgres.connection import (
    Database,
    check_schema_name,
    release_large,
    reused_cursor,
)
from eventkeep.backends.postgres.durable import Durable
from eventkeep.backends.postgres.faults import first_line
from eventkeep.backends.postgres.listen import Listener
from eventkeep.backends.postgres.plans import prefix_successor, prefix_where
from eventkeep.backends.postgres.replica import REPLICA_WAIT, ReplicaReads
from eventkeep.errors import ConfigurationError
from eventkeep.store import (
    AppendResult,
    EventStore,
    PreparedAppend,
    Snapshot,
    StorageCheck,
    StoreStats,
    StreamInfo,
)
from eventkeep.store.anchors import AnchorHead, AnchorRow, AnchorSource
from eventkeep.store.base import Transaction
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES
from eventkeep.store.dcb import AppendCondition, Query
from eventkeep.store.events import TypeRegistry
from eventkeep.store.hashing import ChainRow, VerifyReport, verify_chains
from eventkeep.store.importing import ImportPlan
from eventkeep.store.lifecycle import (
    Operation,
    Removal,
    Selection,
    StreamMeta,
    chain_starts,
)
from eventkeep.store.lifecycle_store import Prepare
from eventkeep.store.recorded import RecordedEvent, decode_tags, from_micros
from eventkeep.store.replicas import ReplicaLag
from eventkeep.store.shredding import ForgottenSubject, KeyStore
from eventkeep.store.transfer import BulkLoader
from eventkeep.store.validation import check_count, check_seconds

__all__ = ["DEFAULT_SCHEMA", "PostgresStore"]

DEFAULT_SCHEMA = "eventkeep"


class PostgresStore(EventStore):
    """An event store in a PostgreSQL schema, shared safely by any number of processes.

    ``dsn`` is a ``postgresql://`` URL or a libpq ``key=value`` string; extra keyword arguments
    that are not options below are passed to libpq as connection parameters (``sslmode``,
    ``application_name``, ...). ``create=False`` opens only a schema that already holds an
    eventkeep store and raises NotFoundError otherwise, instead of creating one (the CLI's
    read commands open stores this way, so a mistyped ``?schema=`` creates nothing).

    ``read_url`` (a streaming replica of the primary; or ``read_host``/``read_port``, the same
    connection settings but another server): reads of the log go to it, writes to the primary;
    see :mod:`eventkeep.backends.postgres.replica` for the rule that keeps a store object's
    reads consistent with its writes, and ``replica_wait``.

    A store that an interrupted ``eventkeep copy`` left in the middle of its bulk load (its
    events table without its secondary indexes: :mod:`eventkeep.backends.postgres.bulk`)
    refuses to open (``IntegrityError``: run the copy again); ``allow_bulk_load=True`` is
    for the copy that finishes it.

    ``group_commit`` (default True): appends outside a store transaction commit
    asynchronously and then wait for a flush that concurrent appends share, and reads of the
    primary make sure what they return is flushed (``durable.py``, migration
    ``0017_group_commit.sql``); False: each append commits synchronously under the sequencer's
    lock, as before.
    """

    # No stream head is stored (migration 0018): a stream's head is its last event.
    _STORES_HEADS = False

    def __init__(
        self,
        dsn: str,
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        schema: str = DEFAULT_SCHEMA,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        pool_size: int | None = None,
        pool_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        lock_timeout: float = 30.0,
        idle_in_transaction_timeout: float = 10.0,
        poll_interval: float = 1.0,
        create: bool = True,
        archive_dir: str | Path | None = None,
        key_store: KeyStore | None = None,
        read_url: str | None = None,
        read_host: str | None = None,
        read_port: int | str | None = None,
        replica_wait: float = REPLICA_WAIT,
        allow_bulk_load: bool = False,
        group_commit: bool = True,
        **params: Any,
    ) -> None:
        super().__init__(registry=registry, max_event_bytes=max_event_bytes, key_store=key_store)
        # Archives of removed events: no file to put them next to, so operations that remove
        # events need archive_dir (soft deletes and reads do not).
        self._set_archive_dir(archive_dir, None)
        for name, flag in (
            ("create", create),
            ("allow_bulk_load", allow_bulk_load),
            ("group_commit", group_commit),
        ):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True or False, got {flag!r}")
        if pool_size is not None:
            pool_max_size = pool_size
        _check_int(pool_min_size, "pool_min_size", 0)
        _check_int(pool_max_size, "pool_max_size", max(1, pool_min_size))
        for name, value in (
            ("pool_timeout", pool_timeout),
            ("connect_timeout", connect_timeout),
            ("lock_timeout", lock_timeout),
            ("idle_in_transaction_timeout", idle_in_transaction_timeout),
        ):
            _check_seconds(value, name)
        _check_seconds(poll_interval, "poll_interval")
        if not poll_interval > 0:
            raise ConfigurationError(f"poll_interval must be seconds > 0, got {poll_interval!r}")
        if not isinstance(dsn, str):
            raise ConfigurationError(f"dsn must be a str, got {type(dsn).__name__}")
        self.schema = check_schema_name(schema)
        settings: dict[str, Any] = {
            "schema": self.schema,
            "pool_min_size": pool_min_size,
            "pool_max_size": pool_max_size,
            "pool_timeout": float(pool_timeout),
            "connect_timeout": float(connect_timeout),
            "lock_timeout": float(lock_timeout),
            "idle_in_transaction_timeout": float(idle_in_transaction_timeout),
            "group_commit": group_commit,
        }
        self._db = Database(dsn, params=params, **settings)
        self.url = self._db.url
        self._replica: ReplicaReads | None = None
        read_dsn, read_params = _read_target(dsn, params, read_url, read_host, read_port)
        if read_dsn is not None:
            replica = Database(read_dsn, params=read_params, **settings)
            self._replica = ReplicaReads(self._db, replica, replica_wait, group_commit)
        self._listener = Listener(self._db, float(poll_interval))
        self._known = plans.Known()  # heads and clock learned from this object's appends
        self._durable = Durable(group_commit)  # the highest position known flushed
        self._local = threading.local()  # .conn: this thread's open store transaction
        try:
            if not create:
                self._db.require_store()
            self._db.migrate(None if allow_bulk_load else self._refuse_bulk_load)
            self._db.open()
            if self._replica is not None:
                self._replica.open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._listener.close()
        self._db.close()
        replica = getattr(self, "_replica", None)  # none yet if the options were refused
        if replica is not None:
            replica.close()

    # -- the replica (replica.py) -------------------------------------------------------------

    @property
    def read_url(self) -> str | None:
        """The replica that serves reads (without its password), or None."""
        return None if self._replica is None else self._replica.url

    def replica_lag(self) -> ReplicaLag | None:
        """How far the replica serving reads is behind the primary now (None without one)."""
        return None if self._replica is None else self._replica.lag()

    def _wrote(self) -> None:
        """A write readers see was committed: the replica must replay it before it serves
        this store object's reads again."""
        self._known.forget_heads()  # an import or lifecycle operation may have moved heads
        if self._replica is not None:
            self._replica.wrote()

    # -- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        from eventkeep.backends.postgres.transaction import PostgresTransaction

        with self._db.connection() as conn:
            with conn.transaction():
                self._local.conn = conn
                self._local.sequenced = False
                self._local.wrote = False  # keys.py: a key destroyed, a forget logged
                try:
                    tx = PostgresTransaction(self, self._db, conn)
                    yield tx
                finally:
                    self._local.conn = None
            if self._replica is not None and (tx.appended or self._local.wrote):
                self._replica.wrote(conn)

    def _reading(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """The connection to read on: this thread's open store transaction's, or a pooled one.

        Reading through the open transaction shows its own appends (a reactor loading an
        aggregate it changed earlier in the batch, an inline projection reading back the events
        it appends), as SQLite and the memory store do. It also keeps a transaction that holds
        the sequencer lock from waiting for itself on another connection.
        """
        if self._replica is None and getattr(self._local, "conn", None) is None:
            return self._db.connection()  # the usual case, without a generator around it
        return self._reading_elsewhere()

    @contextlib.contextmanager
    def _reading_elsewhere(self) -> Iterator[psycopg.Connection[Any]]:
        conn = getattr(self._local, "conn", None)
        if conn is None and self._replica is not None:
            with self._replica.reading() as replica:
                yield replica
        elif conn is None:
            with self._db.connection() as pooled:
                yield pooled
        else:
            with self._db.translate():
                if not self._local.sequenced:
                    # A transaction that reads the event store holds the sequencer from then on,
                    # as every store transaction does on SQLite: a check (read) and the append
                    # that depends on it cannot interleave with another transaction's.
                    conn.execute(sql.SEQUENCER_LOCK)
                    self._local.sequenced = True
                yield conn

    # -- writing ------------------------------------------------------------------------------

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        with self._db.connection() as conn:
            results = writer.append(conn, batches, condition, self._known, self._db.group_commit)
        if self._durable.enabled and results:
            self._durable.learned(*(r.position for r in results))
        if self._replica is not None and results:
            self._replica.appended(max(r.position for r in results))
        return results

    # -- moving history (eventkeep.moving) ----------------------------------------------------

    def _export_page(self, after: int, limit: int, prefix: str | None) -> list[ChainRow]:
        where, params = prefix_where(prefix)
        statement = sql.EXPORT_ROWS.format(where=where)
        with self._reading() as conn:
            rows = conn.execute(statement, [after, *params, limit], binary=True).fetchall()
            if self._bounded():
                self._durable.page(conn, rows)
        return moving.chain_rows(rows)

    def _import_rows(
        self, rows: list[ChainRow], removed_floor: int = 0, ahead: ImportPlan | None = None
    ) -> int:
        with self._db.connection() as conn:
            imported = moving.import_rows(conn, rows, removed_floor, ahead)
        self._wrote()
        return imported

    def _last_event_position(self) -> int:
        with self._reading() as conn:
            position = _scalar(conn, sql.LAST_EVENT_POSITION)
            if self._bounded():
                self._durable.head(conn, position)
        return position

    def _refuse_bulk_load(self, conn: psycopg.Connection[Any]) -> None:
        bulk.check_not_loading(conn, self.url)

    def _bulk_load(self, source_url: str, start: bool) -> BulkLoader | None:
        """The unfinished bulk load of this store, or a new one when ``start`` and the store
        holds no event (:mod:`eventkeep.backends.postgres.bulk`)."""
        return bulk.start_or_resume(self._db, source_url, start, self._wrote)

    # -- reading ------------------------------------------------------------------------------

    def _read_stream_page(
        self,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        limit: int,
        live: bool = False,
    ) -> list[RecordedEvent]:
        rows = self._read_rows(plans.stream_page(stream_id, low, high, backwards, limit, live))
        if self._replica is None and getattr(self._local, "conn", None) is None:
            # Read on the primary, committed: a page that ends at the stream's last event
            # teaches this object the head (a replica's may lag; a store transaction's may roll
            # back).
            head = plans.page_head(rows, high, backwards, limit)
            if head is not None:
                self._known.saw(stream_id, head)
        return plans.stream_records(rows, self.codec)

    def _read_all_page(
        self, after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None
    ) -> list[RecordedEvent]:
        return self._read_page(plans.all_page(after, limit, types, prefix))

    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        return self._read_page(plans.query_page(query, after, limit))

    def _read_page(self, step: plans.Run) -> list[RecordedEvent]:
        """One read statement of ``plans.py`` (the asyncio API runs the same ones)."""
        return plans.records(self._read_rows(step), self.codec)

    def _read_rows(self, step: plans.Run) -> list[Any]:
        with self._reading() as conn:
            cur = reused_cursor(conn, binary=True)
            rows = cur.execute(step.statement, step.params).fetchall()
            release_large(conn, cur, len(rows))
            if self._bounded():
                self._durable.page(conn, rows)
        return rows

    def _bounded(self) -> bool:
        """Whether a read that ``_reading()`` served must be flushed before it is returned:
        group commit, on the primary, outside a store transaction (``durable.py``; the
        replica's reads are bounded in ``replica.py``)."""
        return (
            self._durable.enabled
            and self._replica is None
            and getattr(self._local, "conn", None) is None
        )

    def _stream_version(self, stream_id: str) -> int:
        with self._reading() as conn:
            row = conn.execute(sql.STREAM_VERSION, (stream_id,)).fetchone()
        return int(row[0]) if row else 0

    def _list_streams(self, prefix: str, limit: int | None) -> list[StreamInfo]:
        where = ""
        bounds: tuple[str, ...] = ()
        if prefix:
            high = prefix_successor(prefix)
            where = sql.WHERE_PREFIX_OPEN if high is None else sql.WHERE_PREFIX_RANGE
            bounds = (prefix, prefix if high is None else high)
        params = [*bounds, limit, *bounds, limit, limit]
        with self._reading() as conn:
            rows = conn.execute(sql.LIST_STREAMS.format(where=where), params).fetchall()
        return [StreamInfo(*row) for row in rows]

    def _head_position(self) -> int:
        with self._reading() as conn:
            head = _scalar(conn, sql.HEAD_POSITION)
            if self._bounded():
                self._durable.head(conn, head)
        return head

    def _stats(self) -> StoreStats:
        with self._db.connection() as conn, _snapshot(conn):
            events = _scalar(conn, sql.COUNT_EVENTS)
            streams = _scalar(conn, sql.COUNT_STREAMS)
            head = _scalar(conn, sql.HEAD_POSITION)
            types = {str(t): int(n) for t, n in conn.execute(sql.COUNT_BY_TYPE)}
        return StoreStats(events, streams, head, types)

    def _verify(self, progress: Callable[[int], object] | None = None) -> VerifyReport:
        with self._db.connection() as conn, _snapshot(conn):
            removed = [lifecycle.removal_of(row) for row in conn.execute(lifecycle.REMOVALS)]
            with conn.cursor(name="eventkeep_verify", binary=True) as cur:
                cur.itersize = 2000
                cur.execute(sql.CHAIN_ROWS)
                rows = (_chain_row(row) for row in cur)
                return verify_chains(rows, None, chain_starts(removed), progress)

    def _check_storage(self) -> StorageCheck:
        indexes = self._check_indexes()
        with self._db.connection() as conn, _snapshot(conn):
            found = conn.execute(sql.TAG_INDEX_DIFFERENCES).fetchone()
        missing, extra = (0, 0) if found is None else (int(found[0]), int(found[1]))
        problems = list(indexes.problems)
        if missing or extra:
            problems.append(
                f"tag index: {missing} tags of stored events are missing from event_tags and "
                f"{extra} entries name no such tag of an event (queries and append conditions "
                "would be wrong)"
            )
        return StorageCheck(
            checked=(*indexes.checked, "the tag index against the events' tags"),
            not_checked=indexes.not_checked,
            problems=tuple(problems),
        )

    def _check_indexes(self) -> StorageCheck:
        with self._db.connection() as conn:
            row = conn.execute(sql.AMCHECK_SCHEMA).fetchone()
            if row is None:
                return StorageCheck(
                    not_checked=(
                        "the indexes: the amcheck extension is not installed in this database "
                        "(CREATE EXTENSION amcheck, as a superuser, to have verify check them)",
                    )
                )
            check = pg_sql.SQL(sql.BT_INDEX_CHECK).format(schema=pg_sql.Identifier(row[0]))
            indexes = conn.execute(sql.STORE_BTREE_INDEXES).fetchall()
            problems: list[str] = []
            for oid, name in indexes:
                try:
                    conn.execute(check, (oid,))
                except psycopg.errors.InsufficientPrivilege:
                    return StorageCheck(
                        not_checked=(
                            "the indexes: this role may not run amcheck's bt_index_check "
                            "(GRANT EXECUTE on it, or verify as a superuser)",
                        )
                    )
                except (psycopg.errors.DataCorrupted, psycopg.errors.IndexCorrupted) as exc:
                    problems.append(f"index {name}: {first_line(exc)}")
        return StorageCheck(
            checked=(f"{len(indexes)} B-tree indexes and their tables (amcheck bt_index_check)",),
            problems=tuple(problems),
        )

    @contextlib.contextmanager
    def _anchor_source(self) -> Iterator[AnchorSource]:
        with self._db.connection() as conn:
            # Group commit: an anchor covers only events flushed before its snapshot (one
            # over events a crash takes back would fail every later check).
            ceiling = self._durable.flush(conn) if self._durable.enabled else None
            with _snapshot(conn):
                yield _ConnectionSource(conn, ceiling)

    # -- lifecycle (see eventkeep.store.lifecycle_store and backends.postgres.lifecycle) ------

    def _stream_meta(self, stream_id: str) -> StreamMeta | None:
        with self._reading() as conn:
            row = conn.execute(lifecycle.STREAM_META, (stream_id,)).fetchone()
        return None if row is None else lifecycle.meta_of(row)

    def _stream_metas(self) -> list[tuple[str, StreamMeta]]:
        with self._reading() as conn:
            rows = conn.execute(lifecycle.STREAM_METAS).fetchall()
        return [(str(row[0]), lifecycle.meta_of(row[1:])) for row in rows]

    def _save_stream_meta(self, stream_id: str, meta: StreamMeta) -> None:
        with self._db.connection() as conn, conn.transaction():
            lifecycle.save_meta(conn, stream_id, meta)
        self._wrote()

    def _operations(self) -> list[Operation]:
        with self._reading() as conn:
            rows = conn.execute(lifecycle.OPERATIONS).fetchall()
        return [lifecycle.operation_of(row) for row in rows]

    def _removals(self, stream_id: str | None) -> list[Removal]:
        with self._reading() as conn:
            if stream_id is None:
                rows = conn.execute(lifecycle.REMOVALS).fetchall()
            else:
                rows = conn.execute(lifecycle.REMOVALS_OF, (stream_id,)).fetchall()
        return [lifecycle.removal_of(row) for row in rows]

    def _lifecycle_write(
        self, selection: Selection | None, stream_id: str | None, prepare: Prepare
    ) -> Operation | None:
        # The sequencer's lock: no append commits meanwhile, so the removal sees every event
        # up to the head, and appends after it number above what it removed.
        with self._db.connection() as conn, conn.transaction():
            conn.execute(sql.SEQUENCER_LOCK)
            operation = lifecycle.remove(conn, selection, stream_id, prepare)
        self._wrote()
        return operation

    def _carry_operation(self, operation: Operation, removals: list[Removal]) -> bool:
        with self._db.connection() as conn, conn.transaction():
            conn.execute(sql.SEQUENCER_LOCK)  # appends number above the removals once committed
            carried = lifecycle.carry_operation(conn, operation, removals)
        self._wrote()
        return carried

    def _carry_heads(self, removals: list[Removal]) -> int:
        # A stream's head is its last event or its last removed one (migration 0018): the
        # removals carried before are the heads. Nothing to write.
        return 0

    # -- projections' bookkeeping ------------------------------------------------------------

    def projection_state(self) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
        """Records and checkpoints from one read-only snapshot: no row lock a runner needs."""
        with self._db.connection() as conn, _snapshot(conn):
            records = [(str(n), bytes(d)) for n, d in conn.execute(sql.PROJECTION_RECORDS)]
            checkpoints = {str(n): int(p) for n, p in conn.execute(sql.CHECKPOINTS)}
        return records, checkpoints

    # -- snapshots ----------------------------------------------------------------------------

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        params = (*snapshot[:5], from_micros(snapshot.recorded_at))
        tx_conn = getattr(self._local, "conn", None)
        if tx_conn is not None:
            # In a store transaction (a reactor loading an aggregate it changed): the snapshot
            # may hold its uncommitted events, so it commits or rolls back with them.
            with self._db.translate(), tx_conn.transaction():
                tx_conn.execute(sql.SAVE_SNAPSHOT, params)
            self._local.wrote = True
            return
        with self._db.connection() as conn:
            conn.execute(sql.SAVE_SNAPSHOT, params)
        self._wrote()  # a replica serves this store's snapshot loads once it has the snapshot

    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None:
        with self._reading() as conn:
            row = conn.execute(sql.LOAD_SNAPSHOT, (stream_id, max_version), binary=True).fetchone()
        return Snapshot(*row) if row else None

    def _delete_snapshots(self, prefix: str) -> int:
        where = ""
        params: list[Any] = []
        if prefix:
            high = prefix_successor(prefix)
            where = sql.WHERE_PREFIX_OPEN if high is None else sql.WHERE_PREFIX_RANGE
            params.extend((prefix, prefix if high is None else high))
        with self._db.connection() as conn:
            deleted = conn.execute(sql.DELETE_SNAPSHOTS.format(where=where), params).rowcount
        self._wrote()
        return deleted

    # -- erasure (see keys.py) -----------------------------------------------------------------

    def _default_key_store(self) -> KeyStore:
        return keys.PostgresKeyStore(self)

    def _log_forget(
        self, subject: str, at_us: int, by: str, reason: str, had_key: bool
    ) -> ForgottenSubject:
        return keys.log_forget(self, subject, at_us, by, reason, had_key)

    def _forget_log(self, after: int) -> list[ForgottenSubject]:
        return keys.forget_log(self, after)

    def _delete_snapshots_holding(self, needle: bytes) -> int:
        return keys.delete_snapshots_holding(self, needle)

    # -- waiting for new events ---------------------------------------------------------------

    def wait_for_events(self, after: int, timeout: float | None = None) -> bool:
        """Block until the global log holds an event beyond position ``after``.

        Returns True as soon as it does (at once if it already does), False when ``timeout``
        seconds pass first (``None``: wait as long as it takes). A NOTIFY from the sequencer
        wakes the wait; without one (lost, or the listening connection dropped) the head is
        polled every ``poll_interval`` seconds, so a reader is never stalled for longer.
        """
        check_count(after, what="after")
        if timeout is not None:
            timeout = check_seconds(timeout, what="timeout (or None)")
        if self._replica is not None:
            return self._replica.wait_for_events(
                after, timeout, self._listener.wait, self._listener.poll_interval
            )
        return self._listener.wait(after, timeout, self._head)

    def on_append(self, hook: Callable[[], object]) -> None:
        """See ``EventStore.on_append``: here also on every NOTIFY from another process (the
        store's one listener starts listening)."""
        super().on_append(hook)
        self._listener.add_hook(hook)

    @property
    def poll_interval(self) -> float:
        return self._listener.poll_interval

    def _head(self) -> int:
        with self._db.connection() as conn:
            return _scalar(conn, sql.HEAD_POSITION)


def _chain_row(row: Any) -> ChainRow:
    s, v, p, e, t, sv, r, d, m, h, tags = row
    return ChainRow(s, v, p, e, t, sv, r, d, m, h, decode_tags(tags))


class _ConnectionSource:
    """Anchor rows read in one snapshot transaction of a connection."""

    def __init__(self, conn: psycopg.Connection[Any], ceiling: int | None = None) -> None:
        self._conn = conn
        self._ceiling = ceiling  # group commit: the head flushed before the snapshot

    def head_position(self) -> int:
        head = _scalar(self._conn, sql.HEAD_POSITION)
        return head if self._ceiling is None else min(head, self._ceiling)

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        with self._conn.cursor(name="eventkeep_anchor", binary=True) as cur:
            cur.itersize = 5000
            cur.execute(sql.ANCHOR_ROWS, (after, upto))
            for position, stream_id, version, digest in cur:
                yield AnchorRow(int(position), str(stream_id), int(version), bytes(digest))

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        with self._conn.cursor(name="eventkeep_anchor_heads", binary=True) as cur:
            cur.itersize = 5000
            cur.execute(sql.ANCHOR_HEADS, (upto,))
            for stream_id, version, position, digest in cur:
                yield AnchorHead(str(stream_id), int(version), int(position), bytes(digest))


@contextlib.contextmanager
def _snapshot(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A read-only transaction in which every statement sees one snapshot."""
    conn.execute(sql.BEGIN_SNAPSHOT)
    try:
        yield
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.UNKNOWN:
            conn.execute(sql.ROLLBACK)


def _scalar(conn: psycopg.Connection[Any], statement: str) -> int:
    row = conn.execute(statement).fetchone()
    return int(row[0]) if row else 0


def _read_target(
    dsn: str,
    params: dict[str, Any],
    read_url: str | None,
    read_host: str | None,
    read_port: int | str | None,
) -> tuple[str | None, dict[str, Any]]:
    """The replica's connection string and libpq parameters (None: no replica).

    ``read_url`` is a whole connection string of its own (the primary's libpq parameters
    apply to it too); ``read_host``/``read_port`` are the primary's settings with another
    server, as a streaming replica has the primary's roles, passwords and databases.
    """
    if read_url is not None and (read_host is not None or read_port is not None):
        raise ConfigurationError("give read_url, or read_host/read_port, not both")
    if read_url is not None:
        if not isinstance(read_url, str) or not read_url.strip():
            raise ConfigurationError(f"read_url must be a str, got {type(read_url).__name__}")
        scheme = read_url.partition("://")[0].lower() if "://" in read_url else None
        if scheme is not None and scheme not in ("postgresql", "postgres"):
            raise ConfigurationError(
                f"read_url must be a postgresql:// URL of a replica, got a {scheme}:// URL"
            )
        return read_url, params
    if read_host is None and read_port is None:
        return None, params
    if read_host is not None and (not isinstance(read_host, str) or not read_host.strip()):
        raise ConfigurationError(f"read_host must be a host name, got {read_host!r}")
    moved = dict(params)
    if read_host is not None:
        moved["host"] = read_host
    if read_port is not None:
        moved["port"] = str(read_port)
    return dsn, moved


def _check_int(value: Any, name: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_seconds(value: Any, name: str) -> None:
    check_seconds(value, what=name, error=ConfigurationError)
