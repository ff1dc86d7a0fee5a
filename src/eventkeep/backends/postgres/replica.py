"""Reads from a streaming replica, appends to the primary, and the one rule that joins them.

``PostgresStore(primary, read_url=replica)`` (or ``?read_host=&read_port=`` in the URL): every
write (appends, transactions, snapshots, checkpoints, lifecycle operations) goes to the primary;
reads of the log (``read_stream``, ``read_all``, ``read``, ``head_position``, stream versions
and metadata, ``wait_for_events``) go to the replica, through a pool of its own.

**Readers never skip, on the replica too.** Positions are given in commit order (the
sequencer's lock is held to the commit), and a streaming replica replays the primary's WAL in
commit order, so a replica snapshot that shows position N shows every event below N.

**Group commit.** A replica needs no bound of its own: the primary sends only WAL it has
flushed, so a replica never shows an event a crash of the primary could take back. A read
the primary serves instead is flushed before it is returned (``reading``; ``durable.py``).

**Session consistency.** A store object's reads never see less than it has seen or written:

- it keeps a *floor*: the highest position it appended, and the primary's WAL position after its
  other writes that readers see (lifecycle operations, stream metadata, imports, transactions
  that appended) and after any read it had to serve from the primary;
- a read goes to the replica once the replica has replayed up to the floor. That is known
  without asking while the floor is below what the replica was last seen at; otherwise the
  replica is asked (``pg_last_wal_replay_lsn()`` and its head position), again and again for
  up to ``replica_wait`` seconds (default 0.1; a healthy replica on loopback replays a commit
  within a few milliseconds: ``benchmarks/replica.py``);
- a replica still behind after that: the read is served by the primary, in a snapshot whose
  head and WAL position raise the floor, so later reads from the replica wait for it too.

So a command loop's "load, decide, append, load again" sees its own appends, and a
subscription's head (read before its page) never outruns the page it reads after. Other
processes' appends reach this store's reads when the replica has replayed them (its lag).

``wait_for_events`` cannot LISTEN on a replica (notifications are not replicated, and a standby
refuses LISTEN): the store listens on the primary, and when a notification announces a position
past ``after``, it polls the replica's head (from 0.5 ms, doubling) until it has replayed it.

A replica that cannot be reached fails reads with ``BackendUnavailableError`` naming the read
URL (never its password); writes go on. ``read_url`` must name one server: behind a load
balancer that spreads connections over several replicas, "seen up to" would not hold.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from eventkeep.backends.postgres import sql
from eventkeep.backends.postgres.connection import Database
from eventkeep.errors import ConfigurationError
from eventkeep.store.replicas import ReplicaLag

__all__ = ["REPLICA_WAIT", "ReplicaReads", "lsn_number", "record_end"]

REPLICA_WAIT = 0.1
"""Default ``replica_wait``: seconds a read waits for the replica to replay what this store
object wrote (or saw) before the primary serves it instead."""

FIRST_PAUSE = 0.0005
"""First pause between looks at a replica that is catching up; it doubles each time."""

LONGEST_PAUSE = 0.02

REPLAY_LSN = "SELECT pg_last_wal_replay_lsn()::text"
"""The WAL position the replica has replayed (NULL on a server that is not a standby)."""

PRIMARY_LSN = "SELECT pg_current_wal_insert_lsn()::text"
"""Past the end of every transaction committed on the primary so far."""

PRIMARY_STATE = "SELECT eventkeep_head_position(), pg_current_wal_insert_lsn()::text"

PRIMARY_FLUSHED = "SELECT eventkeep_head_position(), pg_current_wal_flush_lsn()::text"
"""The primary's head, and the end of the WAL it has flushed (what a replica can have)."""

REPLICA_LAG = (
    "SELECT to_regprocedure('eventkeep_head_position()') IS NOT NULL, pg_is_in_recovery(), "
    "pg_last_wal_replay_lsn()::text, "
    "CASE WHEN pg_last_wal_receive_lsn() IS NULL "
    "  OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)

_UNKNOWN = 2**64  # no WAL position (a server that is not a standby): replayed everything


def lsn_number(text: str | None) -> int:
    """A WAL position (``'16/B374D848'``) as a number; None (not a standby) as the largest."""
    if text is None:
        return _UNKNOWN
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


_PAGE = 8192  # XLOG_BLCKSZ
_SEGMENT = 16 * 1024 * 1024  # the default wal_segment_size


def record_end(insert_lsn: int) -> int:
    """The end of the last WAL record before ``insert_lsn`` (``pg_current_wal_insert_lsn()``).

    The two differ only when that record ended exactly at a page boundary: the insert position
    is then past the next page's header (24 bytes, 40 at a segment's start), while the replica
    reports the record's end. No record ends right after a page header, so taking it off is
    exact; without it, a replica that has replayed everything would look behind until the
    primary writes again.
    """
    offset = insert_lsn % _PAGE
    if offset == 24 or (offset == 40 and insert_lsn % _SEGMENT == 40):
        return insert_lsn - offset
    return insert_lsn


class ReplicaReads:
    """The replica's pool, the store object's floor, and where each read goes."""

    def __init__(
        self, primary: Database, replica: Database, wait: float, group_commit: bool = False
    ) -> None:
        if not isinstance(wait, int | float) or isinstance(wait, bool) or not wait >= 0:
            raise ConfigurationError(f"replica_wait must be seconds >= 0, got {wait!r}")
        self.primary = primary
        self.replica = replica
        self.wait = float(wait)
        self.group_commit = group_commit
        self._lock = threading.Lock()
        self._floor_position = 0
        self._floor_lsn = 0
        self._seen_position = -1  # the replica was seen holding every event up to here
        self._seen_lsn = -1  # ... and having replayed the WAL up to here
        self.replica_reads = 0  # reads the replica served (for tests and diagnostics)
        self.primary_reads = 0  # reads the primary served because the replica was behind

    @property
    def url(self) -> str:
        """The read URL, without its password."""
        return self.replica.url

    def open(self) -> None:
        """Open the replica's pool; the floor starts at the primary's WAL position now, so no
        read sees a replica that has not replayed the store's creation yet."""
        self.replica.open()
        self.wrote()

    def close(self) -> None:
        self.replica.close()

    # -- the floor ----------------------------------------------------------------------------

    def appended(self, position: int) -> None:
        """This store object appended events up to ``position`` (no round trip)."""
        with self._lock:
            self._floor_position = max(self._floor_position, position)

    def wrote(self, conn: psycopg.Connection[Any] | None = None) -> None:
        """This store object committed a write readers see (not an append): the floor moves to
        the primary's WAL position now (one round trip, on ``conn`` or a pooled connection)."""
        if conn is None:
            with self.primary.connection() as pooled:
                self.wrote(pooled)
            return
        with self.primary.translate():
            row = conn.execute(PRIMARY_LSN).fetchone()
        lsn = record_end(lsn_number(row[0] if row else None))
        with self._lock:
            self._floor_lsn = max(self._floor_lsn, lsn)

    # -- routing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection to read on: the replica's once it has replayed up to the floor, else
        (after ``wait`` seconds) the primary's, in a snapshot that raises the floor."""
        if self._replayed_floor():
            self.replica_reads += 1
            with self._on_replica() as conn:
                yield conn
            return
        self.primary_reads += 1
        with self.primary.connection() as conn:
            conn.execute(sql.BEGIN_SNAPSHOT)
            try:
                row = conn.execute(PRIMARY_STATE).fetchone()
                if row is not None:
                    with self._lock:
                        self._floor_position = max(self._floor_position, int(row[0]))
                        self._floor_lsn = max(self._floor_lsn, record_end(lsn_number(row[1])))
                yield conn
            finally:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.UNKNOWN:
                    conn.execute(sql.ROLLBACK)
            if self.group_commit and row is not None:
                # Group commit: what the snapshot showed may not be flushed yet (a replica
                # only ever has flushed WAL). Its insert position, read after the snapshot was
                # taken, is past every commit it saw: flush up to there before the caller
                # returns what it read (durable.py).
                conn.execute(sql.FLUSH_WAL_TO, (row[1],))

    @contextlib.contextmanager
    def _on_replica(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.replica.connection() as conn:
                yield conn
        except Exception:
            with self._lock:  # a restarted replica may come back further behind
                self._seen_position = self._seen_lsn = -1
            raise

    def _replayed_floor(self) -> bool:
        """Whether the replica has replayed everything this store object wrote or saw;
        asks it again for up to ``wait`` seconds while it has not."""
        with self._lock:
            position, lsn = self._floor_position, self._floor_lsn
            if position <= self._seen_position and lsn <= self._seen_lsn:
                return True
        deadline = time.monotonic() + self.wait
        pause = FIRST_PAUSE
        while True:
            if self._look(position, lsn):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, LONGEST_PAUSE)

    def _look(self, position: int, lsn: int) -> bool:
        """Ask the replica how far it has replayed; True if up to ``position`` and ``lsn``."""
        with self._on_replica() as conn:
            row = conn.execute(REPLAY_LSN).fetchone()
            replayed = lsn_number(row[0] if row else None)
            if replayed < lsn:
                return False
            # Replayed up to the WAL position: the schema and its function exist there.
            head_row = conn.execute(sql.HEAD_POSITION).fetchone()
        head = int(head_row[0]) if head_row else 0
        with self._lock:
            self._seen_lsn = max(self._seen_lsn, replayed)
            self._seen_position = max(self._seen_position, head)
        return head >= position

    # -- waiting and lag ----------------------------------------------------------------------

    def head(self) -> int:
        """The head position a read sees now: the replica's, once it has replayed up to the
        floor (else the primary's, as for any read)."""
        with self.reading() as conn:
            row = conn.execute(sql.HEAD_POSITION).fetchone()
        return int(row[0]) if row else 0

    def wait_for_events(
        self,
        after: int,
        timeout: float | None,
        listen: Callable[[int, float | None, Callable[[], int]], bool],
        poll_interval: float,
    ) -> bool:
        """True once the replica holds an event beyond ``after``; False after ``timeout``.

        ``listen(after, timeout, head)`` is the primary's listener: it returns when a
        notification announces a position beyond ``after`` (or ``head()``, the replica's, is
        beyond it). The replica is then polled until it has replayed that far.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return self.head() > after
            if not listen(after, remaining, self.head):
                return False
            pause = FIRST_PAUSE
            while True:
                if self.head() > after:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                time.sleep(pause if remaining is None else min(pause, remaining))
                pause = min(pause * 2, poll_interval)

    def lag(self) -> ReplicaLag:
        """The replica's lag now: the primary's state first, then the replica's."""
        with self.primary.connection() as conn:
            row = conn.execute(PRIMARY_FLUSHED).fetchone()
        primary_head, primary_lsn = (int(row[0]), lsn_number(row[1])) if row else (0, 0)
        with self._on_replica() as conn:
            found = conn.execute(REPLICA_LAG).fetchone()
            assert found is not None
            created, in_recovery, replayed, seconds = found
            replica_head = 0  # until the replica has replayed the store's creation
            if created:
                head_row = conn.execute(sql.HEAD_POSITION).fetchone()
                replica_head = int(head_row[0]) if head_row else 0
        behind_bytes = 0
        if in_recovery and replayed is not None:
            behind_bytes = max(0, primary_lsn - lsn_number(replayed))
        return ReplicaLag(
            self.replica.url,
            primary_head,
            int(replica_head),
            max(0, primary_head - int(replica_head)),
            behind_bytes,
            max(0.0, float(seconds)) if in_recovery else 0.0,
            bool(in_recovery),
        )
