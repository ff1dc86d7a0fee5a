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

What the append does is decided by :func:`eventkeep.store.planner.plan_append`, as on every backend;
this module only fetches heads and event ids, and writes rows. Idempotency costs nothing on the
happy path: the stored event ids are looked up only when the plan needs them (an expected
version did not match: a retry of an append that went through looks exactly like that) or when
a unique index refused the insert.

Under contention (a hot stream, many writers) the optimistic attempt can keep losing the race.
After a few lost races the append takes the sequencer's lock first, in one transaction, and
then reads locked heads: nothing can change them before it commits, so it cannot lose again.
An ``ANY`` append therefore always goes through, however busy the stream. See
``migrations/0004_uncontended_numbering.sql`` and ``docs/postgres.md``.

An append with a condition (:class:`eventkeep.store.dcb.AppendCondition`) takes that locked
path at once: with the sequencer's lock held, no append can commit between the check ("the
first event matching the query after P", an index probe, read beside the heads in the same
round trip) and the insert. It adds no lock of its own, and appends without a condition are
unchanged.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg import errors as pgerrors

from eventkeep.backends.postgres import dcb, sql
from eventkeep.store import AppendResult, PreparedAppend, StoredIdentity
from eventkeep.store.dcb import AppendCondition
from eventkeep.store.planner import Head, Plan, PlannedRow, new_heads, plan_append
from eventkeep.store.recorded import from_micros
from eventkeep.store.tags import encode_tags

__all__ = ["append", "append_in_transaction"]

_OPTIMISTIC_ATTEMPTS = 3
"""Lost races (a stale head, a deadlock) before an append takes the sequencer's lock first."""
_RACES = (pgerrors.UniqueViolation, pgerrors.DeadlockDetected, pgerrors.SerializationFailure)
_Stored = dict[bytes, StoredIdentity]
_GUARDED = {
    statement: sql.conditional(statement)
    for statement in (
        sql.APPEND_EVENT,
        sql.APPEND_TAGGED_EVENT,
        sql.APPEND_EVENTS,
        sql.APPEND_TAGGED_EVENTS,
    )
}
"""Each append statement, for a conditional append."""


def append(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
) -> list[AppendResult]:
    """Append ``batches`` atomically on ``conn`` (autocommit, configured for the store)."""
    if condition is not None:
        return _append_conditional(conn, batches, condition)
    stored: _Stored | None = None
    for _ in range(_OPTIMISTIC_ATTEMPTS):
        heads, clock, stored, _ = _read(conn, batches, stored, lock=False)
        plan = plan_append(batches, heads, stored)
        if plan.needs_ids:
            stored = _stored_identities(conn, batches)
            plan = plan_append(batches, heads, stored)
        if plan.conflict is not None:
            raise plan.conflict
        if not plan.writes:
            return _replayed(plan)
        try:
            first = _send(conn.cursor(binary=True), plan, max(clock, plan.time_floor()))
        except _RACES:
            # A head went stale (the (stream_id, version) key refused the insert), an event id
            # is stored (a retry racing its original, or a reused id), or a deadlock: read
            # again, with the event ids this time.
            stored = stored if stored is not None else {}
            continue
        return plan.results(first)
    return _append_locked(conn, batches)


def _append_conditional(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend], condition: AppendCondition
) -> list[AppendResult]:
    """A conditional append in two round trips and one short lock, as one without a condition:
    (1) the heads, the clock, and the condition's first match with the head position (one
    snapshot), without a lock; (2) the one insert statement, whose position comes from
    ``eventkeep_append_position_at(head)``: once it holds the sequencer's lock it raises
    SQLSTATE EKC01 (nothing written) unless the head is still the one read, that is unless
    some append committed since the check. Otherwise the check still holds.

    A match, or a moved head, is decided under the lock by ``_append_checked_locked`` (a retry
    of an append already stored returns its result; otherwise the condition fails).
    """
    stored: _Stored | None = None
    for _ in range(_OPTIMISTIC_ATTEMPTS):
        heads, clock, stored, checked = _read(
            conn, batches, stored, lock=False, condition=condition
        )
        assert checked is not None
        matched, head = checked
        if matched is not None:
            return _append_checked_locked(conn, batches, condition)
        plan = plan_append(batches, heads, stored, condition, None)
        if plan.needs_ids:
            stored = _stored_identities(conn, batches)
            plan = plan_append(batches, heads, stored, condition, None)
        if plan.conflict is not None:
            raise plan.conflict
        if not plan.writes:
            return _replayed(plan)
        try:
            first = _send(conn.cursor(binary=True), plan, max(clock, plan.time_floor()), head)
        except _RACES:
            stored = stored if stored is not None else {}
            continue
        except psycopg.Error as exc:
            if exc.sqlstate != sql.HEAD_MOVED:
                raise
            return _append_checked_locked(conn, batches, condition)
        return plan.results(first)
    return _append_checked_locked(conn, batches, condition)


def _append_checked_locked(
    conn: psycopg.Connection[Any], batches: list[PreparedAppend], condition: AppendCondition
) -> list[AppendResult]:
    """A conditional append checked under the lock, in two round trips: (1) BEGIN, the
    sequencer's lock, the heads and the condition's first match, pipelined; plan; (2) the
    insert and COMMIT, pipelined. The lock is held from its grant to the commit, across one
    client round trip: no append can commit in between, so the check cannot go stale.

    Anything off the happy path (a plan that needs the stored event ids, an insert refused by
    the event-id index: a retry) is rolled back and done again by ``_append_locked``, which
    handles every case.
    """
    heads_cur = conn.cursor(binary=True)
    match_cur = conn.cursor(binary=True)
    query, after = condition.fail_if_events_match, condition.after or 0
    try:
        with conn.pipeline():
            conn.execute(sql.BEGIN)
            conn.execute(sql.SEQUENCER_LOCK)
            if len(batches) == 1:
                heads_cur.execute(sql.LOCK_HEAD, (batches[0].stream_id,))
            else:
                heads_cur.execute(sql.LOCK_HEADS, (sorted(b.stream_id for b in batches),))
            match_cur.execute(*dcb.first_match_and_head(query, after))
        rows = heads_cur.fetchall()
        heads = {r[0]: Head(r[1], r[2], r[3]) for r in rows if r[0] is not None}
        found = match_cur.fetchone()
        matched = None if found is None or found[0] is None else int(found[0])
        plan = plan_append(batches, heads, None, condition, matched)
        if plan.needs_ids or plan.conflict is not None or not plan.writes:
            conn.execute(sql.ROLLBACK)
            return _append_locked(conn, batches, condition)
        insert_cur = conn.cursor(binary=True)
        with conn.pipeline():
            _execute_insert(insert_cur, plan, max(int(rows[0][4]), plan.time_floor()))
            conn.execute(sql.COMMIT)
        first = insert_cur.fetchone()
    except pgerrors.UniqueViolation:
        _rollback(conn)
        return _append_locked(conn, batches, condition)
    except BaseException:
        _rollback(conn)
        raise
    assert first is not None
    return plan.results(int(first[0]))


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a failed transaction on ``conn``, if one is still open."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute(sql.ROLLBACK)


def _append_locked(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
) -> list[AppendResult]:
    """The append in one transaction that takes the sequencer's lock before it reads: no other
    append can move a head (or add an event matching the condition) before it commits, so it
    cannot lose a race."""
    with conn.transaction():
        conn.execute(sql.SEQUENCER_LOCK)
        return _append_under_lock(conn, batches, condition)


def append_in_transaction(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
) -> list[AppendResult]:
    """Append ``batches`` inside the open store transaction on ``conn``, numbered at once.

    Each call runs in a savepoint, so a ConcurrencyError (or any error) undoes this call only.
    It first takes the sequencer's lock, which the transaction then holds until it ends, and
    locks the heads of its streams: it writes the events numbered above the head position and
    returns their positions. Other appends wait for the transaction to end, so every snapshot
    that sees one of its positions sees every position below it, as always; and its positions
    become visible only with its commit (which is synchronous). See ``docs/postgres.md``,
    "Store transactions".
    """
    with conn.transaction():  # a savepoint
        conn.execute(sql.SEQUENCER_LOCK)
        return _append_under_lock(conn, batches, condition)


def _append_under_lock(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
) -> list[AppendResult]:
    """Plan and write with the sequencer's lock held by the open transaction on ``conn``: the
    condition's check sees every append that committed before, and none can commit before
    this one does."""
    heads, clock, _, checked = _read(conn, batches, None, lock=True, condition=condition)
    matched = None if checked is None else checked[0]
    plan = plan_append(batches, heads, None, condition, matched)
    if plan.needs_ids:
        stored = _stored_identities(conn, batches)
        plan = plan_append(batches, heads, stored, condition, matched)
    if plan.conflict is not None:
        raise plan.conflict
    if not plan.writes:
        return _replayed(plan)
    try:
        with conn.transaction():  # a savepoint: the event-id index may refuse the insert
            first = _send(conn.cursor(binary=True), plan, max(clock, plan.time_floor()))
    except pgerrors.UniqueViolation:
        # Heads are locked, so only an event id can be stored: a retry, or a reused id.
        stored = _stored_identities(conn, batches)
        plan = plan_append(batches, heads, stored, condition, matched)
        if plan.conflict is not None:
            raise plan.conflict from None
        if not plan.writes:
            return _replayed(plan)
        first = _send(conn.cursor(binary=True), plan, max(clock, plan.time_floor()))
    return plan.results(first)


def _read(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    stored: _Stored | None,
    *,
    lock: bool,
    condition: AppendCondition | None = None,
) -> tuple[dict[str, Head], int, _Stored | None, tuple[int | None, int] | None]:
    """The heads of the streams written and the server's clock (microseconds), in one round
    trip; with the stored event ids too when ``stored`` is not None (they are looked up again,
    beside the heads: both must come from the same moment), and with a condition the first
    event matching it after its position (None: none does) and the head position, both from
    one snapshot."""
    heads_cur = conn.cursor(binary=True)
    ids_cur = conn.cursor(binary=True)
    if len(batches) == 1:
        statement = sql.LOCK_HEAD if lock else sql.HEAD
        params: list[Any] = [batches[0].stream_id]
    else:
        statement = sql.LOCK_HEADS if lock else sql.HEADS
        params = [sorted(b.stream_id for b in batches)]
    if condition is not None:
        # The condition's first match and the head position, in the same statement: one
        # snapshot for the heads, the check and the head.
        query, after = condition.fail_if_events_match, condition.after or 0
        match, match_params = dcb.first_match_and_head(query, after)
        statement = sql.with_columns(statement, match)
        params += match_params
    with conn.pipeline():
        heads_cur.execute(statement, params)
        if stored is not None:
            ids_cur.execute(sql.STORED_IDENTITIES, (_uuids(batches),))
    rows = heads_cur.fetchall()
    heads = {r[0]: Head(r[1], r[2], r[3]) for r in rows if r[0] is not None}
    if stored is not None:
        stored = {r[0]: StoredIdentity(*r) for r in ids_cur.fetchall()}
    checked: tuple[int | None, int] | None = None
    if condition is not None:
        found = rows[0]
        checked = (None if found[5] is None else int(found[5]), int(found[6]))
    return heads, int(rows[0][4]), stored, checked


def _stored_identities(conn: psycopg.Connection[Any], batches: list[PreparedAppend]) -> _Stored:
    rows = conn.execute(sql.STORED_IDENTITIES, (_uuids(batches),), binary=True).fetchall()
    return {r[0]: StoredIdentity(*r) for r in rows}


def _uuids(batches: list[PreparedAppend]) -> list[UUID]:
    """The event ids of ``batches`` as UUIDs: only needed off the happy path (lookups)."""
    return [UUID(bytes=ev.event_id) for batch in batches for ev in batch.events]


def _replayed(plan: Plan) -> list[AppendResult]:
    """The results of an append that wrote nothing: every batch a replay."""
    return [step for step in plan.outcomes if isinstance(step, AppendResult)]


def _send(cur: psycopg.Cursor[Any], plan: Plan, now_us: int, guard: int | None = None) -> int:
    """Send the one statement that inserts the plan's rows, numbered after the head position,
    and upserts the heads; returns the first position. ``guard``: the head position at which
    a condition was checked; the statement fails (SQLSTATE EKC01) if the head moved."""
    _execute_insert(cur, plan, now_us, guard)
    found = cur.fetchone()
    assert found is not None
    return int(found[0])


def _execute_insert(
    cur: psycopg.Cursor[Any], plan: Plan, now_us: int, guard: int | None = None
) -> None:
    """Execute (without fetching its row: in a pipeline, the commit follows first) the one
    statement that inserts the plan's rows and upserts the heads."""
    rows = plan.rows(now_us)
    now = from_micros(now_us)
    tagged = any(row.tags for row in rows)
    first: tuple[Any, ...] = () if guard is None else (guard,)
    params: tuple[Any, ...]
    if len(rows) == 1:
        row = rows[0]
        params = (*first, *_event_params(row, now), row.stream_id, row.version, row.hash, now)
        if tagged:
            statement = sql.APPEND_TAGGED_EVENT
            params = (*params[:-5], encode_tags(row.tags), *params[-4:], list(row.tags))
        else:
            statement = sql.APPEND_EVENT
        cur.execute(_GUARDED[statement] if guard is not None else statement, params)
    else:
        s, v, e, t, sv, _, d, m, h, g = (list(column) for column in zip(*rows, strict=True))
        last = [row for _, row in new_heads(rows)]
        hs = [r.stream_id for r in last]
        hv = [r.version for r in last]
        hh = [r.hash for r in last]
        tags = [encode_tags(x) for x in g]
        params = (
            now,
            s,
            v,
            [UUID(bytes=x) for x in e],
            t,
            sv,
            d,
            m,
            h,
            tags,
            now,
            hs,
            hv,
            hh,
        )
        if tagged:
            offsets = [n for n, row in enumerate(rows, 1) for _ in row.tags]
            names = [tag for row in rows for tag in row.tags]
            kinds = [row.type for row in rows for _ in row.tags]
            statement = sql.APPEND_TAGGED_EVENTS
            params = (*params, offsets, names, kinds)
        else:
            statement = sql.APPEND_EVENTS
        cur.execute(_GUARDED[statement] if guard is not None else statement, (*first, *params))


def _event_params(row: PlannedRow, now: Any) -> tuple[Any, ...]:
    return (
        row.stream_id,
        row.version,
        UUID(bytes=row.event_id),
        row.type,
        row.schema_version,
        now,
        row.data,
        row.metadata,
        row.hash,
        None,  # the tags: replaced for APPEND_TAGGED_EVENT (see _execute_insert)
    )
