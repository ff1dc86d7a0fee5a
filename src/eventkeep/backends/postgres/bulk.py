"""Bulk loading an empty PostgreSQL store: what ``copy_store`` does when it copies into one.

Every row binary-``COPY``'d into the events table costs the server five index insertions
and its triggers (benchmarks/README.md, "Copying a store"). Into an empty
store, a copy does as pg_restore does: it drops the secondary indexes of the events table
(all but its primary key, which the stream heads' trigger probes), writes its batches, then
builds them again, each in one sorted pass.

The state is durable and checked:

- the indexes are dropped in the transaction that writes the ``eventkeep_bulk_load`` row (the
  statements that build them again included: ``pg_get_indexdef``), and built again in the
  transaction that deletes it (migration 0016): there is no moment at which a store lacks its
  indexes without that row saying so;
- a store holding the row refuses a normal open (``PostgresStore``: ``IntegrityError`` naming
  the copy to run again); only a copy opens it, with ``allow_bulk_load=True``;
- the loading connection (its own, outside the pool) holds the sequencer's lock for the
  whole load (a session advisory lock): appends from store objects opened before the load
  wait for it, and give up after their lock_timeout;
- a batch commits its events, their tags and the load's last position in one transaction,
  and only after the batch before it committed (two connections take batches in turn): the
  store holds a prefix of the copy whatever is killed when, and the copy run again resumes
  after its last committed batch;
- the append-only triggers stay in place: an UPDATE or DELETE is refused as always, and a
  unique index that cannot be built (an event id twice) fails the finish, leaving the row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg.errors import UniqueViolation

from eventkeep.backends.postgres import sql
from eventkeep.backends.postgres.connection import Database
from eventkeep.backends.postgres.moving import Encoded, copy_rows, encode_rows
from eventkeep.errors import IntegrityError
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan, Numbering, TargetHead, choose_plan
from eventkeep.store.recorded import from_micros, to_micros
from eventkeep.urls import redact

__all__ = ["BulkLoad", "check_not_loading", "start_or_resume"]

STATE = (
    "SELECT source, started_at, rebuild, last_position, last_recorded_at FROM eventkeep_bulk_load"
)

# The whole load holds the sequencer's lock (the key eventkeep_sequencer_lock() takes per
# transaction), at session level: appends wait for it, and this session's own batches and
# transactions take it again freely.
SESSION_LOCK = (
    "SELECT pg_advisory_lock((x'454b5351'::bigint << 32) "
    "| (SELECT oid FROM pg_namespace WHERE nspname = current_schema())::bigint)"
)

HOLDS_EVENTS = "SELECT EXISTS (SELECT 1 FROM events)"

# The events table's indexes but its primary key, with the statement that makes each (a
# constraint's index: ALTER TABLE ... ADD CONSTRAINT, so that it is a constraint again).
SECONDARY_INDEXES = """
SELECT i.relname,
       c.conname,
       coalesce('ALTER TABLE events ADD CONSTRAINT ' || quote_ident(c.conname) || ' '
                || pg_get_constraintdef(c.oid), pg_get_indexdef(i.oid))
  FROM pg_index AS x
  JOIN pg_class AS i ON i.oid = x.indexrelid
  LEFT JOIN pg_constraint AS c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
 WHERE x.indrelid = 'events'::regclass AND NOT x.indisprimary
 ORDER BY i.relname
"""

BEGIN_LOAD = "INSERT INTO eventkeep_bulk_load (source, rebuild) VALUES (%s, %s)"

LOADED = "UPDATE eventkeep_bulk_load SET last_position = %s, last_recorded_at = %s"

END_LOAD = "DELETE FROM eventkeep_bulk_load"

REMOVED_TOP = "SELECT coalesce(max(last_position), 0) FROM eventkeep_removed"

# The head of every stream (its last event, or its last removed one).
ALL_HEADS = (
    f"SELECT h.stream_id, h.version, h.hash FROM ({sql.STREAM_IDS}) AS s CROSS JOIN LATERAL "
    f"({sql.HEAD_OF.format(id='s.stream_id')}) AS h"
)

# The last event of every stream the load wrote (along the primary key, which it keeps).
LOADED_HEADS = (
    "SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM events "
    "ORDER BY stream_id, version DESC"
)

# A batch's commit does not wait for its WAL to reach the disk: a server crash may lose the
# last batches, and with them (same transactions) the load's record of them, so the copy run
# again writes them again. The finish's commit waits, as every other commit does: a copy
# reported done is durable.
NO_FLUSH_WAIT = "SET synchronous_commit = off"
FLUSH_WAIT = "SET LOCAL synchronous_commit = on"

# The sort of an index build: one pass in memory for a few million events.
BUILD_MEMORY = "SET LOCAL maintenance_work_mem = '256MB'"


def check_not_loading(conn: psycopg.Connection[Any], url: str) -> None:
    """Refuse a store that a bulk load left without its indexes (see the module docstring)."""
    found = conn.execute(STATE).fetchone()
    if found is None:
        return
    source, started_at, _rebuild, last_position, _at = found
    raise IntegrityError(
        f"{url} is the target of an unfinished `eventkeep copy` from {source} (started "
        f"{started_at:%Y-%m-%d %H:%M:%S %Z}, copied up to position {last_position}): it "
        "holds part of the source's events and its events table lacks its secondary indexes "
        "until the copy finishes. Run the same `eventkeep copy` command again to finish it "
        "(it builds the indexes); a copy opens the store with allow_bulk_load=True"
    )


def start_or_resume(
    db: Database, source_url: str, start: bool, wrote: Callable[[], None]
) -> BulkLoad | None:
    """The store's unfinished bulk load, resumed; else, when ``start`` (the caller's choice:
    the copy is big enough, or asked for) and the store holds no event, a new one; else None
    (an ordinary import then). The load runs on a connection of its own, outside the pool,
    whose close lets go of the lock whatever happens."""
    conn = db.connect()
    try:
        with db.translate():
            conn.execute(SESSION_LOCK)
            found = conn.execute(STATE).fetchone()
            if found is not None:
                at = to_micros(found[4]) if found[4] is not None else 0
                return BulkLoad(db, conn, wrote, int(found[3]), at)
            if not start or _holds_events(conn):
                conn.close()
                return None
            with conn.transaction():
                indexes = conn.execute(SECONDARY_INDEXES).fetchall()
                for name, constraint, _make in indexes:
                    if constraint is not None:
                        conn.execute(f"ALTER TABLE events DROP CONSTRAINT {_quoted(constraint)}")
                    else:
                        conn.execute(f"DROP INDEX {_quoted(name)}")
                rebuild = [make for _name, _constraint, make in indexes]
                conn.execute(BEGIN_LOAD, (redact(source_url), rebuild))
        return BulkLoad(db, conn, wrote, 0, 0)
    except BaseException:
        conn.close()
        raise


def _holds_events(conn: psycopg.Connection[Any]) -> bool:
    found = conn.execute(HOLDS_EVENTS).fetchone()
    return bool(found and found[0])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class BulkLoad:
    """One bulk load in progress on ``conn``: batches written with :meth:`import_rows`, then
    :meth:`finish`; :meth:`close` lets go of the lock (the state stays until ``finish``).

    The streams' heads are kept here: read once when the load starts or resumes (from the
    events, migration 0018), then kept up to date from the planned rows."""

    def __init__(
        self,
        db: Database,
        conn: psycopg.Connection[Any],
        wrote: Callable[[], None],
        last_position: int,
        last_at: int,
    ) -> None:
        self._db = db
        self._conn = conn
        self._wrote = wrote
        self._last = last_position
        self._last_at = last_at
        self._removed_top = int(_one(conn, REMOVED_TOP))
        found = conn.execute(ALL_HEADS, binary=True).fetchall()
        if last_position:  # resumed: the heads of what the load wrote are in its events
            found += conn.execute(LOADED_HEADS, binary=True).fetchall()
        self._heads = {s: TargetHead(int(v), bytes(h)) for s, v, h in found}
        self._encoded: dict[int, Encoded] = {}
        self._conns = [conn, db.connect()]  # the first holds the lock and runs the DDL
        for each in self._conns:
            each.execute(NO_FLUSH_WAIT)
        self._writers = ThreadPoolExecutor(2, thread_name_prefix="eventkeep-bulk")
        self._writing: list[Future[None] | None] = [None, None]
        self._turn = 0

    def prepare(self, plan: ImportPlan) -> None:
        """Encode a batch planned ahead (on the copy's reading thread, while this one waits
        for the server): its COPY data is ready when the batch is written as planned."""
        if plan.rows:
            self._encoded[plan.rows[0].position] = encode_rows(plan.rows)

    def import_rows(
        self, rows: list[ChainRow], removed_floor: int, ahead: ImportPlan | None
    ) -> int:
        """Plan one batch and hand it to a writer (as ``moving.import_rows`` plans, but with
        the heads, the log's head and its last time known here, not read from tables that
        lack their indexes now; and no lookup of stored events: a bulk load only ever
        appends to its own prefix, after the event it stopped at).

        Batches alternate between two connections, so that the server writes one batch while
        it receives the next one's rows, on two cores. Each commits only after the batch
        before it committed: the store always holds a prefix of the copy, whatever is killed
        when. Returns the rows planned; :meth:`finish` raises what a write raised."""
        known = self._heads
        heads = {s: h for s in dict.fromkeys(r.stream_id for r in rows) if (h := known.get(s))}
        top = max(self._last, self._removed_top)
        numbering = Numbering(top, max(self._last, removed_floor))
        planned = choose_plan(rows, heads, {}, self._last_at, numbering, ahead)
        encoded = self._encoded.pop(rows[0].position, None)
        if not planned:
            return 0
        if ahead is None or planned is not ahead.rows:
            encoded = None
        for stream_id, row in {row.stream_id: row for row in planned}.items():
            known[stream_id] = TargetHead(row.version, row.hash)
        last = planned[-1]
        self._last, self._last_at = last.position, last.recorded_at_us
        slot = self._turn
        self._turn = 1 - slot
        busy = self._writing[slot]
        if busy is not None:
            busy.result()  # its connection is free again (and it committed)
        before = self._writing[1 - slot]
        self._writing[slot] = self._writers.submit(
            self._write, self._conns[slot], planned, encoded, before
        )
        return len(planned)

    def _write(
        self,
        conn: psycopg.Connection[Any],
        planned: list[ChainRow],
        encoded: Encoded | None,
        before: Future[None] | None,
    ) -> None:
        last = planned[-1]
        with self._db.translate(), conn.transaction():
            try:
                copy_rows(conn, planned, encoded)
            except UniqueViolation as exc:
                raise IntegrityError(
                    f"the copy's batch ending at position {last.position} holds an event "
                    "already stored at its stream and version in the target: the target is "
                    "not a copy of this source; nothing of this batch was imported"
                ) from exc
            if before is not None:
                before.result()  # raises (and rolls this batch back) if it failed
            with conn.pipeline():
                conn.execute(LOADED, (last.position, from_micros(last.recorded_at_us)))
                conn.execute(sql.NOTIFY_HEAD, (last.position,))
        self._wrote()

    def _drain(self) -> None:
        for slot, busy in enumerate(self._writing):
            if busy is not None:
                self._writing[slot] = None
                busy.result()

    def finish(self) -> None:
        """Wait for the batches handed to the writers; then build the dropped indexes and end
        the load in one transaction (killed meanwhile: nothing of it happened, and the copy
        run again finishes it)."""
        self._drain()
        conn = self._conn
        with self._db.translate(), conn.transaction():
            found = conn.execute(STATE).fetchone()
            if found is None:
                return
            conn.execute(BUILD_MEMORY)
            conn.execute(FLUSH_WAIT)
            for statement in found[2]:
                self._build(conn, statement)
            conn.execute(END_LOAD)
        self._wrote()

    def _build(self, conn: psycopg.Connection[Any], statement: str) -> None:
        try:
            conn.execute(statement)
        except UniqueViolation as exc:
            raise IntegrityError(
                f"the copied events break a unique index ({statement}): the copy holds an "
                "event id, or a position, twice; the store stays in its bulk load (it "
                "refuses to open) until that is resolved"
            ) from exc

    def close(self) -> None:
        """Close the load's connections, letting go of the lock (the load's row stays until
        :meth:`finish`; a batch not committed yet is rolled back)."""
        with contextlib.suppress(Exception):
            self._drain()
        self._writers.shutdown()
        for conn in self._conns:
            conn.close()


def _one(conn: psycopg.Connection[Any], statement: str) -> Any:
    found = conn.execute(statement).fetchone()
    assert found is not None
    return found[0]
