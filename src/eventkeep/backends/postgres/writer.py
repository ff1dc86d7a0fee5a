"""The append path: read the heads, then one transaction that numbers and writes the events.

1. Read (one round trip, no transaction to speak of, no lock): the heads of the streams written
   and the server's clock. Check expected versions and chain the hashes in Python.
2. Write (one round trip, one statement, its own transaction): insert the events and upsert the
   heads (``VALUES`` for one event, binary arrays for more), numbered above the head position
   that ``eventkeep_append_position()`` returns once it holds the sequencer's lock; notify the
   store's channel; commit, synchronously. The statement and its parameters are on the server
   before the lock is taken, and the commit follows at once: the lock is held from its grant
   to the commit, never while the server waits for a client. Appends are numbered in commit
   order: every snapshot that sees position N sees every position below N, so a reader never
   skips an event.

A head read in step 1 can be stale by step 2: another writer appended to the stream in between.
Then the events' primary key ``(stream_id, version)`` refuses the insert (versions are dense, so
a changed head always means the version we write exists), the transaction rolls back, and the
append is redone from step 1. That key is the compare-and-set: no row lock is ever held across a
round trip, and a writer never holds a row lock while it waits for the sequencer.

Idempotency costs nothing on the happy path: the stored event ids are looked up only when an
expected version does not match (a retry of an append that went through looks exactly like
that) or when a unique index refuses an insert; the append is then redone with the lookup, and
``replayed_result`` decides between a replay, a ConcurrencyError and a DuplicateEventIdError
exactly as for the other backends. See ``migrations/0004_uncontended_numbering.sql`` and
``docs/postgres.md``.
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
    firsts, positions = _retrying(lambda check_ids: _write(conn, batches, check_ids))
    if positions is None:  # a replay: the positions of the stored events
        positions = dict(conn.execute(sql.POSITIONS, (_uuids(batches),), binary=True))
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


def _uuids(batches: list[PreparedAppend]) -> list[UUID]:
    """The event ids of ``batches`` as UUIDs: only needed off the happy path (lookups)."""
    return [UUID(bytes=ev.event_id) for batch in batches for ev in batch.events]


def _write(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend], check_ids: bool
) -> tuple[list[int], dict[bytes, int] | None]:
    """Read the heads, then write what is new; returns each batch's first version (new or
    replayed), and the positions of the events when all were written now (else None)."""
    heads_cur = conn.cursor(binary=True)
    known_cur = conn.cursor(binary=True)
    with conn.pipeline():
        if len(batches) == 1:
            heads_cur.execute(sql.HEAD, (batches[0].stream_id,))
        else:
            heads_cur.execute(sql.HEADS, ([b.stream_id for b in batches],))
        if check_ids:
            known_cur.execute(sql.STORED_IDENTITIES, (_uuids(batches),))
    rows = heads_cur.fetchall()
    known = {r[0]: StoredIdentity(*r) for r in known_cur.fetchall()} if check_ids else {}
    todo: _Todo = []
    firsts = _plan(batches, _heads(rows), known, check_ids, todo)
    if not todo:
        return firsts, None
    cur = conn.cursor(binary=True)
    _send_append(cur, todo, _now(rows, todo))  # autocommit: its own transaction
    return firsts, _positions(batches, todo, int(_one(cur)))


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


def _send_append(cur: psycopg.Cursor[Any], todo: _Todo, now_us: int) -> None:
    """Send the one statement that inserts the events, numbered after the head position, and
    upserts the heads; it returns the first position."""
    rows, heads = _chain(todo, now_us)
    if len(rows) == 1:
        cur.execute(sql.APPEND_EVENT, (*rows[0], *heads[0]))
        return
    s, v, e, t, sv, _, d, m, h = (list(column) for column in zip(*rows, strict=True))
    hs, hv, hh, _ = (list(column) for column in zip(*heads, strict=True))
    now = heads[0][3]
    cur.execute(sql.APPEND_EVENTS, (now, s, v, e, t, sv, d, m, h, now, hs, hv, hh))


# -- inside a store transaction ---------------------------------------------------------------


def append_in_transaction(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend]
) -> list[AppendResult]:
    """Append ``batches`` inside the open store transaction on ``conn``, numbered at once.

    Each call runs in a savepoint, so a ConcurrencyError (or any error) undoes this call only.
    It first takes the sequencer's lock, which the transaction then holds until it ends, and
    locks the heads of its streams: it writes the events numbered above the head position and
    returns their positions. Other appends wait for the
    transaction to end, so every snapshot that sees one of its positions sees every position
    below it, as always; and its positions become visible only with its commit (which is
    synchronous). See ``docs/postgres.md``, "Store transactions".
    """

    def write(check_ids: bool) -> tuple[list[int], dict[bytes, int]]:
        with conn.transaction():  # a savepoint
            conn.execute(sql.SEQUENCER_LOCK)
            firsts, positions = _write_in_transaction(conn, batches, check_ids)
            if positions is None:  # a replay
                ids = _uuids(batches)
                positions = dict(conn.execute(sql.POSITIONS, (ids,), binary=True).fetchall())
        return firsts, positions

    firsts, positions = _retrying(write)
    return _results(batches, firsts, positions)


def _write_in_transaction(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend], check_ids: bool
) -> tuple[list[int], dict[bytes, int] | None]:
    """``_write`` in the caller's transaction, which holds the sequencer's lock: the heads are
    locked rather than read, and there is no BEGIN, COMMIT or ROLLBACK."""
    if len(batches) == 1:
        key = batches[0].stream_id
        rows = conn.execute(sql.LOCK_HEAD, (key,), binary=True).fetchall()
    else:
        keys = sorted(b.stream_id for b in batches)
        rows = conn.execute(sql.LOCK_HEADS, (keys,), binary=True).fetchall()
    known: dict[bytes, StoredIdentity] = {}
    if check_ids:
        ids = _uuids(batches)
        stored = conn.execute(sql.STORED_IDENTITIES, (ids,), binary=True).fetchall()
        known = {r[0]: StoredIdentity(*r) for r in stored}
    todo: _Todo = []
    firsts = _plan(batches, _heads(rows), known, check_ids, todo)
    if not todo:
        return firsts, None
    cur = conn.cursor(binary=True)
    _send_append(cur, todo, _now(rows, todo))
    return firsts, _positions(batches, todo, int(_one(cur)))


def _heads(rows: list[tuple[Any, ...]]) -> dict[str, _Head]:
    return {r[0]: r[:4] for r in rows if r[0] is not None}


def _now(rows: list[tuple[Any, ...]], todo: _Todo) -> int:
    """The append's timestamp: the clock, never behind the head of a stream written."""
    return max([int(rows[0][4]), *(h[3] for _, h in todo if h)])


def _positions(batches: list[PreparedAppend], todo: _Todo, first: int) -> dict[bytes, int] | None:
    """The positions of the events written from ``first`` on; None if some batch was a replay."""
    if len(todo) < len(batches):
        return None
    written = (ev.event_id for batch, _ in todo for ev in batch.events)
    return {event_id: p for p, event_id in enumerate(written, first)}
