"""The append path: one transaction when the sequencer is free, else a write and a numbering.

1. The write transaction (two round trips, one pipeline). First ``eventkeep_try_sequence()``:
   if no other transaction holds the sequencer's lock, it takes it and returns the head
   position (numbering whatever other writers left pending). In the same round trip, lock the
   heads of the streams written and read the server's clock. Then check expected versions,
   chain the hashes, and insert the events and upsert the heads in one statement (``VALUES``
   for one event, binary arrays for more). Writers of different streams share no lock here
   but the sequencer's, which they only ever try: a writer never waits for it.
2. With the lock (an uncontended append), the events go in already numbered, above the head,
   with a ``NOTIFY``, and the commit is synchronous: that is the whole append. Without it, the
   events go in with ``position NULL`` and the commit does not wait for its WAL flush; then the
   numbering (one statement, its own transaction): ``eventkeep_positions(ids)``. Unless
   another writer's sequencer run numbered these events already, it runs the sequencer, which
   numbers every committed event still unnumbered (this writer's and any other's) and commits
   synchronously, flushing the write above with it; then it returns this append's positions.
   See ``migrations/0001_initial.sql``, ``0004_uncontended_numbering.sql`` and
   ``docs/postgres.md``.

Idempotency costs nothing on the happy path: the stored event ids are looked up only when an
expected version does not match (a retry of an append that went through looks exactly like
that) or when the event id index refuses an insert; the transaction is then redone with the
lookup, and ``replayed_result`` decides between a replay, a ConcurrencyError and a
DuplicateEventIdError exactly as for the other backends. A transaction that loses a race (a
unique index hit by a concurrent writer of the same new stream or the same event ids, a deadlock)
is rolled back and redone the same way: the winner's rows then decide the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import errors as pgerrors

from eventkeep.backends.postgres import sql
from eventkeep.hashing import GENESIS, chain_events
from eventkeep.recorded import from_micros
from eventkeep.store import (
    AppendResult,
    PreparedAppend,
    StoredIdentity,
    concurrency_error,
    expected_matches,
    replayed_result,
)

__all__ = ["append", "append_in_transaction"]

_T = TypeVar("_T")
_ATTEMPTS = 5
_RETRIED = (pgerrors.UniqueViolation, pgerrors.DeadlockDetected, pgerrors.SerializationFailure)
_Head = tuple[str, int, bytes, int]  # stream_id, version, last_hash, last_recorded_at
_Todo = list[tuple[PreparedAppend, "_Head | None"]]


def append(conn: psycopg.Connection[Any], batches: list[PreparedAppend]) -> list[AppendResult]:
    """Append ``batches`` atomically on ``conn`` (autocommit, configured for the store)."""
    ids = [UUID(bytes=ev.event_id) for batch in batches for ev in batch.events]
    firsts, positions = _retrying(lambda check_ids: _write(conn, batches, ids, check_ids))
    if positions is None:
        positions = dict(conn.execute(sql.POSITIONS, (ids,), binary=True))
    return _results(batches, firsts, positions)


def _retrying(write: Callable[[bool], _T]) -> _T:
    """Run ``write(check_ids)``, again after a race (a unique-index hit, a deadlock) or a
    mismatched expected version, looking for already stored event ids from then on."""
    check_ids = False
    attempt = 1
    while True:
        try:
            return write(check_ids)
        except _CheckIds:
            check_ids = True
        except _RETRIED:
            if attempt >= _ATTEMPTS:
                raise
            check_ids = True
        attempt += 1


def _results(
    batches: list[PreparedAppend], firsts: list[int], positions: dict[bytes, int]
) -> list[AppendResult]:
    return [
        AppendResult(
            batch.stream_id,
            tuple(range(first, first + len(batch.events))),
            tuple(positions[ev.event_id] for ev in batch.events),
        )
        for batch, first in zip(batches, firsts, strict=True)
    ]


class _CheckIds(Exception):
    """An expected version did not match: look for a retried append before reporting it."""


def _write(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend], ids: list[UUID], check_ids: bool
) -> tuple[list[int], dict[bytes, int] | None]:
    """The write transaction; returns each batch's first version (new or replayed), and the
    positions of the events when it numbered them itself (else None: they await numbering).

    It is the implicit transaction of one pipeline: the statements sent before the pipeline's
    closing Sync commit together (or not at all), with no BEGIN or COMMIT round trip. Reading
    the heads in the middle flushes the pipeline without a Sync, so their row locks (and the
    sequencer's lock, if taken) hold until the end.
    """
    sequence_cur = conn.cursor(binary=True)
    heads_cur = conn.cursor(binary=True)
    known_cur = conn.cursor(binary=True)
    todo: _Todo = []
    positions: dict[bytes, int] | None = None
    try:
        with conn.pipeline():
            sequence_cur.execute(sql.TRY_SEQUENCE)
            if len(batches) == 1:
                heads_cur.execute(sql.LOCK_HEAD, (batches[0].stream_id,))
            else:
                heads_cur.execute(sql.LOCK_HEADS, (sorted(b.stream_id for b in batches),))
            if check_ids:
                known_cur.execute(sql.STORED_IDENTITIES, (ids,))
            rows = heads_cur.fetchall()  # flushes, without ending the transaction
            head_position = _one(sequence_cur)
            known = {r[0]: StoredIdentity(*r) for r in known_cur.fetchall()} if check_ids else {}
            heads: dict[str, _Head] = {r[0]: r[:4] for r in rows if r[0] is not None}
            firsts = _plan(batches, heads, known, check_ids, todo)
            now = max([int(rows[0][4]), *(h[3] for _, h in todo if h)])
            first = None if head_position is None or not todo else int(head_position) + 1
            if todo:
                _send_insert(conn, todo, now, first)
    except BaseException:
        _rollback(conn)
        raise
    if first is not None and len(todo) == len(batches):
        written = (ev.event_id for batch, _ in todo for ev in batch.events)
        positions = {event_id: p for p, event_id in enumerate(written, first)}
    return firsts, positions


def _one(cur: psycopg.Cursor[Any]) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row[0]


def _plan(
    batches: list[PreparedAppend],
    heads: dict[str, _Head],
    known: dict[bytes, StoredIdentity],
    check_ids: bool,
    todo: _Todo,
) -> list[int]:
    """Each batch's first version; the batches to write go to ``todo`` with their heads."""
    firsts: list[int] = []
    for batch in batches:
        stored = [known[ev.event_id] for ev in batch.events if ev.event_id in known]
        replay = replayed_result(batch, stored)
        head = heads.get(batch.stream_id)
        actual = head[1] if head else 0
        if replay is not None:
            firsts.append(replay.versions[0])
        elif not expected_matches(batch.expected, actual):
            if not check_ids:
                raise _CheckIds
            raise concurrency_error(batch, actual)
        else:
            firsts.append(actual + 1)
            todo.append((batch, head))
    return firsts


def _chain(todo: _Todo, now_us: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows to insert (hash-chained per stream) and each stream's new head."""
    now = from_micros(now_us)
    rows: list[tuple[Any, ...]] = []
    heads: list[tuple[Any, ...]] = []
    for batch, head in todo:
        stream_id = batch.stream_id
        actual, previous = (head[1], head[2]) if head else (0, GENESIS)
        hashes = chain_events(previous, stream_id, actual, batch.events, now_us)
        rows.extend(
            (
                stream_id,
                version,
                UUID(bytes=ev.event_id),
                ev.type,
                ev.schema_version,
                now,
                ev.data,
                ev.metadata,
                digest,
            )
            for version, ev, digest in zip(
                range(actual + 1, actual + len(hashes) + 1), batch.events, hashes, strict=True
            )
        )
        heads.append((stream_id, actual + len(hashes), hashes[-1], now))
    return rows, heads


def _send_insert(
    conn: psycopg.Connection[Any], todo: _Todo, now_us: int, first: int | None = None
) -> None:
    """Queue the one statement that inserts the events and upserts the heads: numbered from
    ``first`` on (with the notification), or unnumbered when ``first`` is None."""
    rows, heads = _chain(todo, now_us)
    if len(rows) == 1:
        if first is None:
            conn.execute(sql.INSERT_EVENT, (*rows[0], *heads[0]))
        else:
            conn.execute(sql.INSERT_NUMBERED_EVENT, (first, *rows[0], *heads[0]))
    else:
        s, v, e, t, sv, _, d, m, h = (list(column) for column in zip(*rows, strict=True))
        hs, hv, hh, _ = (list(column) for column in zip(*heads, strict=True))
        now = heads[0][3]
        columns = (now, s, v, e, t, sv, d, m, h, now, hs, hv, hh)
        if first is None:
            conn.execute(sql.INSERT_EVENTS, columns)
        else:
            conn.execute(sql.INSERT_NUMBERED_EVENTS, (first, *columns))
    if first is not None:
        conn.execute(sql.NOTIFY_HEAD, (first + len(rows) - 1,))


# -- inside a store transaction ---------------------------------------------------------------


def append_in_transaction(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend]
) -> list[AppendResult]:
    """Append ``batches`` inside the open store transaction on ``conn``, numbered at once.

    Each call runs in a savepoint, so a ConcurrencyError (or any error) undoes this call only.
    It first takes the sequencer's lock, which the transaction then holds until it ends: it
    writes the events, numbers them (with anything else pending, as a sequencer run does) and
    returns their positions. Other sequencer runs wait for the transaction to end, so every
    snapshot that sees one of its positions sees every position below it, as always; and its
    positions become visible only with its commit (which is synchronous, see
    ``eventkeep_sequence``). See ``docs/postgres.md``, "Store transactions".
    """
    ids = [UUID(bytes=ev.event_id) for batch in batches for ev in batch.events]

    def write(check_ids: bool) -> tuple[list[int], dict[bytes, int]]:
        with conn.transaction():  # a savepoint
            conn.execute(sql.SEQUENCER_LOCK)
            firsts = _write_in_transaction(conn, batches, ids, check_ids)
            rows = conn.execute(sql.POSITIONS, (ids,), binary=True).fetchall()
        return firsts, dict(rows)

    firsts, positions = _retrying(write)
    return _results(batches, firsts, positions)


def _write_in_transaction(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend], ids: list[UUID], check_ids: bool
) -> list[int]:
    """The write of ``_write``, in the caller's transaction: no BEGIN, COMMIT or ROLLBACK."""
    if len(batches) == 1:
        key = batches[0].stream_id
        rows = conn.execute(sql.LOCK_HEAD, (key,), binary=True).fetchall()
    else:
        keys = sorted(b.stream_id for b in batches)
        rows = conn.execute(sql.LOCK_HEADS, (keys,), binary=True).fetchall()
    known: dict[bytes, StoredIdentity] = {}
    if check_ids:
        stored = conn.execute(sql.STORED_IDENTITIES, (ids,), binary=True).fetchall()
        known = {r[0]: StoredIdentity(*r) for r in stored}
    heads: dict[str, _Head] = {r[0]: r[:4] for r in rows if r[0] is not None}
    todo: _Todo = []
    firsts = _plan(batches, heads, known, check_ids, todo)
    if todo:
        now = max([int(rows[0][4]), *(h[3] for _, h in todo if h)])
        _send_insert(conn, todo, now)
    return firsts


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a failed write transaction, if the connection still has one."""
    status = conn.info.transaction_status
    if status in (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR):
        try:
            conn.execute(sql.ROLLBACK)
        except psycopg.Error:
            conn.close()  # unusable: the pool will discard it
