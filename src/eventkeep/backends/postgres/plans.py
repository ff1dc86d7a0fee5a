"""The append path and the reads as sans-I/O steps: the one implementation that the synchronous
store (``writer.py``, on a ``psycopg.Connection``) and the asyncio API (``aio_driver.py``, on a
``psycopg.AsyncConnection``) both run. Only the I/O differs.

A plan is a generator that yields database operations and receives their results:

- :class:`Run`: execute one statement with its parameters, and fetch all its rows, one row or
  none (``fetch``); receives the rows;
- :class:`Pipeline`: several ``Run`` sent in one round trip (psycopg's pipeline mode); receives
  each one's rows, in order;
- :class:`InTransaction`: run a nested plan in a transaction (a savepoint inside one), which
  rolls back if the nested plan raises; receives its result;
- :class:`Rollback`: end a failed transaction, if one is still open.

A driver throws what an operation raised (a psycopg error) into the plan at the ``yield``, so
the plan catches a refused insert exactly where the synchronous code did. What the plan returns
is the driver's result.

The append itself (two round trips, the retry on a lost race, the locked path, the conditional
append) is described in ``writer.py``'s docstring.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Literal, NamedTuple
from uuid import UUID

from psycopg import errors as pgerrors

from eventkeep.backends.postgres import dcb, sql
from eventkeep.store import NO_STREAM, AppendResult, PreparedAppend, StoredIdentity
from eventkeep.store.codec import Codec
from eventkeep.store.dcb import AppendCondition, Query
from eventkeep.store.planner import Head, Plan, PlannedRow, new_heads, plan_append
from eventkeep.store.recorded import RecordedEvent, from_micros
from eventkeep.store.tags import encode_tags

__all__ = [
    "HEAVY_ROWS",
    "Flush",
    "InTransaction",
    "Op",
    "Pipeline",
    "Rollback",
    "Run",
    "Steps",
    "all_page",
    "append",
    "append_in_transaction",
    "head_position",
    "prefix_successor",
    "prefix_where",
    "query_page",
    "records",
    "stream_page",
]


class Run(NamedTuple):
    """Execute ``statement`` with ``params``; the rows ("all"), the first row or None ("one"),
    or None ("none") come back."""

    statement: Any
    params: Any = None
    fetch: Literal["all", "one", "none"] = "all"
    binary: bool = True


class Pipeline(NamedTuple):
    """``Run`` steps in one round trip; each one's result comes back, in a list."""

    steps: tuple[Run, ...]


class InTransaction(NamedTuple):
    """Run ``steps`` in a transaction (a savepoint when one is open); what they return comes
    back. An exception they raise rolls the transaction back and is thrown into the plan."""

    steps: Steps


class Rollback(NamedTuple):
    """End a failed transaction on the connection, if one is still open."""


Op = Run | Pipeline | InTransaction | Rollback
Steps = Generator[Op, Any, Any]
"""A plan: yields operations, receives their results, returns what the driver returns."""

HEAVY_ROWS = 100
"""An append of more events than this is too much work for an event loop (hashing, and psycopg
adapting its arrays in Python): the asyncio API sends it from a store thread, through
``writer.py``. The loop thread's CPU in the costliest step of a native append (2026-11-30,
load 0.6, 8 appends each): 0.5-0.9 ms for 25 and 50 events, 0.9-1.1 ms for 100, 1.6-3.8 ms for
200."""

_OPTIMISTIC_ATTEMPTS = 3
"""Lost races (a stale head, a deadlock) before an append takes the sequencer's lock first."""
_RACES = (pgerrors.UniqueViolation, pgerrors.DeadlockDetected, pgerrors.SerializationFailure)
_Stored = dict[bytes, StoredIdentity]
_Checked = tuple[int | None, int] | None
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
_NOT_BEFORE = {statement: sql.not_before(statement) for statement in _GUARDED}
"""Each append statement, for an append sent without reading first (``_append_known``)."""


# -- the append ---------------------------------------------------------------------------------


class Known:
    """What a store object learned: the heads of the streams it appended to or read to their
    end (on the primary, outside a store transaction), and the server's clock (its offset
    from this machine's, from its appends). With them an append to such a stream (or to a new
    one, ``NO_STREAM``) is sent in one round trip instead of two: see :func:`_append_known`. A
    command that loads an aggregate and saves its new events is then two round trips, not
    three. Shared by the store's threads and its asyncio engine; a head known wrongly (another
    writer appended, or a logged operation removed the stream's last events, since) costs one
    refused insert, never a wrong one: a stream's events are immutable, so a version's hash
    never changes, and a removed version is never written again (SQLSTATE EKC04).
    """

    __slots__ = ("_heads", "_offset_us", "_skip", "_strikes")

    def __init__(self) -> None:
        self._heads: dict[str, Head] = {}
        self._offset_us: int | None = None
        self._strikes = 0  # one-round-trip appends refused in a row
        self._skip = 0  # appends still to make the usual way after the last refusal

    def heads(self, batches: list[PreparedAppend]) -> dict[str, Head] | None:
        """The known heads of ``batches``' streams (a stream expected new, ``NO_STREAM`` or
        version 0, counts as known: it has no head), or None if one is unknown or the clock
        is, or if appends sent in one round trip were refused lately: other writers are busy,
        and each refusal costs a round trip, so after the n-th in a row the next 2**n appends
        (at most 64) read first."""
        if self._offset_us is None:
            return None
        if self._skip:
            self._skip -= 1
            return None
        heads: dict[str, Head] = {}
        known = self._heads
        for batch in batches:
            head = known.get(batch.stream_id)
            if head is not None:
                heads[batch.stream_id] = head
            elif batch.expected is not NO_STREAM and batch.expected != 0:
                return None
        return heads

    def now_us(self) -> int:
        """The server's clock, as this machine estimates it."""
        assert self._offset_us is not None
        return time.time_ns() // 1000 + self._offset_us

    def clock(self, server_us: int) -> None:
        """The server's clock read just now."""
        self._offset_us = server_us - time.time_ns() // 1000

    def wrote(self, rows: list[PlannedRow]) -> None:
        """``rows`` were written."""
        known = self._heads
        if len(known) > _MOST_KNOWN_HEADS:
            known.clear()
        for _, row in new_heads(rows):
            known[row.stream_id] = Head(row.version, row.hash, row.recorded_at_us)

    def saw(self, stream_id: str, head: Head) -> None:
        """A read found ``head`` to be the stream's last event (see :func:`page_head`). Kept
        unless a later head is known: a read's snapshot may predate this object's own append."""
        known = self._heads
        current = known.get(stream_id)
        if current is None or current.version < head.version:
            if len(known) > _MOST_KNOWN_HEADS:
                known.clear()
            known[stream_id] = head

    def refused(self, batches: list[PreparedAppend]) -> None:
        """An append sent in one round trip was refused (a head or the clock was not the
        server's): forget those heads, and read first for a while."""
        for batch in batches:
            self._heads.pop(batch.stream_id, None)
        self._strikes = min(self._strikes + 1, 6)
        self._skip = 2**self._strikes

    def sent(self) -> None:
        """An append sent in one round trip went through."""
        self._strikes = 0

    def forget_heads(self) -> None:
        self._heads.clear()


_MOST_KNOWN_HEADS = 10_000


class Flush:
    """Group commit (``group_commit=True``): whether the WAL is known flushed past the append's
    commit. An append's own transaction that had to wait for the sequencer's lock then commits
    asynchronously (migration ``0017_group_commit.sql``) and ``eventkeep_flush_wal()`` follows
    the statement, in a transaction of its own (:func:`_send`); a path that commits otherwise
    (under the sequencer's lock, synchronously) or writes nothing (a replayed retry, which may
    have found another writer's events not yet flushed) gets one ``eventkeep_flush_wal()`` at
    the end."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False


def append(
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
    known: Known | None = None,
    *,
    group_commit: bool = False,
) -> Generator[Op, Any, list[AppendResult]]:
    """Append ``batches`` atomically (on an autocommit connection configured for the store).
    ``known``: the store's :class:`Known`, used (one round trip) and kept up to date.
    ``group_commit``: the store's sessions set ``eventkeep.group_commit`` (see :class:`Flush`):
    the append returns only once the WAL is flushed past its commit."""
    if not group_commit:
        return (yield from _append(batches, condition, known, None))
    flush = Flush()
    results = yield from _append(batches, condition, known, flush)
    if not flush.done:
        yield _FLUSH_WAL
    return results


def _append(
    batches: list[PreparedAppend],
    condition: AppendCondition | None,
    known: Known | None,
    flush: Flush | None,
) -> Generator[Op, Any, list[AppendResult]]:
    if condition is not None:
        if known is not None:
            sent = yield from _append_known(batches, known, condition, flush)
            if sent is not None:
                return sent
        return (yield from _append_conditional(batches, condition, known, flush))
    if known is not None:
        sent = yield from _append_known(batches, known, None, flush)
        if sent is not None:
            return sent
    stored: _Stored | None = None
    for _ in range(_OPTIMISTIC_ATTEMPTS):
        heads, clock, stored, _ = yield from _read(batches, stored)
        if known is not None:
            known.clock(clock)
        plan, stored = yield from _planned(batches, heads, stored)
        if not plan.writes:
            return _replayed(plan)
        rows = plan.rows(max(clock, plan.time_floor()))
        try:
            first = yield from _send(rows, flush=flush)
        except _RACES:
            # A head went stale (the (stream_id, version) key refused the insert), an event id
            # is stored (a retry racing its original, or a reused id), or a deadlock: read
            # again, with the event ids this time.
            stored = stored if stored is not None else {}
            continue
        except pgerrors.Error as exc:
            if exc.sqlstate != sql.VERSION_REMOVED:
                raise
            continue  # a logged operation removed the stream's events since the heads' read
        if known is not None:
            known.wrote(rows)
        return plan.results(first)
    return (yield from _append_locked(batches))


def _append_known(
    batches: list[PreparedAppend],
    known: Known,
    condition: AppendCondition | None = None,
    flush: Flush | None = None,
) -> Generator[Op, Any, list[AppendResult] | None]:
    """The append in one round trip, or None (nothing written) to append the usual way.

    Only when every stream's head is known (or the stream is expected new) and the plan made
    with those heads writes everything: the one insert statement is sent at once, its events
    recorded at this machine's estimate of the server's clock (never before the heads' times).
    The events' primary key refuses it if a head was not the stream's (another writer
    appended), the event-id index if an id is stored (a retry), and the numbering function
    if the log's last event was recorded after that time (SQLSTATE EKC02), if a version it
    writes was removed by a logged operation (EKC04), or if the first version it writes to a
    stream does not follow a stored or removed one (EKC05, migration 0019: a head known ahead
    of its stream): then nothing was written, and the append is done the usual way, which
    decides what each of these means.
    A conflict, a replay or a plan that needs the stored ids is never decided here.

    With a ``condition`` the statement checks it too: from its own snapshot, before any lock,
    it reads the first event matching the query after the condition's position and the head
    position, and ``eventkeep_append_position_unmatched`` (migration 0013) raises SQLSTATE
    EKC03 if there is a match, or takes the sequencer's lock and raises EKC01 unless the head
    is still the one that snapshot saw (no append committed between the check and the lock:
    the check still holds). A match or a moved head is decided under the lock
    (``_append_checked_locked``: a failed condition, or a re-send of an append already
    stored, whose own events match).
    """
    heads = known.heads(batches)
    if heads is None:
        return None
    plan = plan_append(batches, heads, None, condition, None)
    if plan.needs_ids or plan.conflict is not None or not plan.writes:
        return None
    rows = plan.rows(max(known.now_us(), plan.time_floor()))
    if condition is None:
        send = _send(rows, not_before=True, flush=flush)
    else:
        query, after = condition.fail_if_events_match, condition.after or 0
        send = _send(rows, match=dcb.first_match(query, after), flush=flush)
    try:
        first = yield from send
    except _RACES:
        known.refused(batches)
        return None
    except pgerrors.Error as exc:
        if condition is not None and exc.sqlstate in (sql.CONDITION_MATCHED, sql.HEAD_MOVED):
            return (yield from _append_checked_locked(batches, condition, known))
        if exc.sqlstate not in (sql.CLOCK_BEHIND, sql.VERSION_REMOVED, sql.VERSION_GAP):
            raise
        known.refused(batches)  # the clock, or a head gone with its removed events or ahead
        return None
    known.sent()
    known.wrote(rows)
    return plan.results(first)


def _append_conditional(
    batches: list[PreparedAppend],
    condition: AppendCondition,
    known: Known | None = None,
    flush: Flush | None = None,
) -> Generator[Op, Any, list[AppendResult]]:
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
        heads, clock, stored, checked = yield from _read(batches, stored, condition=condition)
        assert checked is not None
        if known is not None:
            known.clock(clock)
        matched, head = checked
        if matched is not None:
            return (yield from _append_checked_locked(batches, condition, known))
        plan, stored = yield from _planned(batches, heads, stored, condition)
        if not plan.writes:
            return _replayed(plan)
        rows = plan.rows(max(clock, plan.time_floor()))
        try:
            first = yield from _send(rows, head, flush=flush)
        except _RACES:
            stored = stored if stored is not None else {}
            continue
        except pgerrors.Error as exc:
            if exc.sqlstate not in (sql.HEAD_MOVED, sql.VERSION_REMOVED):
                raise
            return (yield from _append_checked_locked(batches, condition, known))
        if known is not None:
            known.wrote(rows)
        return plan.results(first)
    return (yield from _append_checked_locked(batches, condition, known))


def _append_checked_locked(
    batches: list[PreparedAppend], condition: AppendCondition, known: Known | None = None
) -> Generator[Op, Any, list[AppendResult]]:
    """A conditional append checked under the lock, in two round trips: (1) BEGIN, the
    sequencer's lock, the heads and the condition's first match, pipelined; plan; (2) the
    insert and COMMIT, pipelined. The lock is held from its grant to the commit, across one
    client round trip: no append can commit in between, so the check cannot go stale.

    Anything off the happy path (a plan that needs the stored event ids, an insert refused by
    the event-id index: a retry) is rolled back and done again by ``_append_locked``, which
    handles every case.
    """
    query, after = condition.fail_if_events_match, condition.after or 0
    if len(batches) == 1:
        heads_step = Run(sql.HEAD, (batches[0].stream_id,))
    else:
        heads_step = Run(sql.HEADS, (sorted(b.stream_id for b in batches),))
    try:
        _, _, rows, found = yield Pipeline(
            (
                Run(sql.BEGIN, fetch="none"),
                Run(sql.SEQUENCER_LOCK, fetch="none"),
                heads_step,
                Run(*dcb.first_match_and_head(query, after), fetch="one"),
            )
        )
        heads = {r[0]: Head(r[1], r[2], r[3]) for r in rows if r[0] is not None}
        matched = None if found is None or found[0] is None else int(found[0])
        plan = plan_append(batches, heads, None, condition, matched)
        if plan.needs_ids or plan.conflict is not None or not plan.writes:
            yield Run(sql.ROLLBACK, fetch="none")
            return (yield from _append_locked(batches, condition))
        written = plan.rows(max(int(rows[0][4]), plan.time_floor()))
        first, _ = yield Pipeline((_insert(written), Run(sql.COMMIT, fetch="none")))
    except pgerrors.UniqueViolation:
        yield Rollback()
        return (yield from _append_locked(batches, condition))
    except GeneratorExit:  # the plan was abandoned (its driver is gone): nothing to send
        raise
    except BaseException:
        yield Rollback()
        raise
    assert first is not None
    if known is not None:
        known.clock(int(rows[0][4]))
        known.wrote(written)
    return plan.results(int(first[0]))


def _append_locked(
    batches: list[PreparedAppend], condition: AppendCondition | None = None
) -> Generator[Op, Any, list[AppendResult]]:
    """The append in one transaction that takes the sequencer's lock before it reads: no other
    append can move a head (or add an event matching the condition) before it commits, so it
    cannot lose a race."""
    result: list[AppendResult] = yield InTransaction(_locked_steps(batches, condition))
    return result


def append_in_transaction(
    batches: list[PreparedAppend], condition: AppendCondition | None = None
) -> Generator[Op, Any, list[AppendResult]]:
    """Append ``batches`` inside the open store transaction, numbered at once.

    Each call runs in a savepoint, so a ConcurrencyError (or any error) undoes this call only.
    It first takes the sequencer's lock, which the transaction then holds until it ends, and
    reads the heads of its streams, which no other append can move meanwhile: it writes the
    events numbered above the head position and returns their positions. Other appends wait
    for the transaction to end, so every snapshot that sees one of its positions sees every
    position below it, as always; and its positions become visible only with its commit
    (which is synchronous). See ``docs/postgres.md``, "Store transactions".
    """
    result: list[AppendResult] = yield InTransaction(_locked_steps(batches, condition))
    return result


def _locked_steps(
    batches: list[PreparedAppend], condition: AppendCondition | None
) -> Generator[Op, Any, list[AppendResult]]:
    yield Run(sql.SEQUENCER_LOCK, fetch="none")
    return (yield from _append_under_lock(batches, condition))


def _append_under_lock(
    batches: list[PreparedAppend], condition: AppendCondition | None = None
) -> Generator[Op, Any, list[AppendResult]]:
    """Plan and write with the sequencer's lock held by the open transaction: the condition's
    check sees every append that committed before, and none can commit before this one does."""
    heads, clock, _, checked = yield from _read(batches, None, condition=condition)
    matched = None if checked is None else checked[0]
    plan, _ = yield from _planned(batches, heads, None, condition, matched)
    if not plan.writes:
        return _replayed(plan)
    try:
        # A savepoint: the event-id index may refuse the insert.
        first = yield InTransaction(_send(plan.rows(max(clock, plan.time_floor()))))
    except pgerrors.UniqueViolation:
        # No append can move a head past the lock, so only an event id can be stored: a
        # retry, or a reused id.
        stored = yield from _stored_identities(batches)
        plan = plan_append(batches, heads, stored, condition, matched)
        if plan.conflict is not None:
            raise plan.conflict from None
        if not plan.writes:
            return _replayed(plan)
        first = yield from _send(plan.rows(max(clock, plan.time_floor())))
    return plan.results(first)


def _planned(
    batches: list[PreparedAppend],
    heads: Mapping[str, Head],
    stored: _Stored | None,
    condition: AppendCondition | None = None,
    matched: int | None = None,
) -> Generator[Op, Any, tuple[Plan, _Stored | None]]:
    """The plan for ``heads`` (its stored event ids read when it needs them), and the ids it
    was made with; a conflict raised."""
    plan = plan_append(batches, heads, stored, condition, matched)
    if plan.needs_ids:
        stored = yield from _stored_identities(batches)
        plan = plan_append(batches, heads, stored, condition, matched)
    if plan.conflict is not None:
        raise plan.conflict
    return plan, stored


def _read(
    batches: list[PreparedAppend],
    stored: _Stored | None,
    *,
    condition: AppendCondition | None = None,
) -> Generator[Op, Any, tuple[dict[str, Head], int, _Stored | None, _Checked]]:
    """The heads of the streams written and the server's clock (microseconds), in one round
    trip; with the stored event ids too when ``stored`` is not None (they are looked up again,
    beside the heads: both must come from the same moment), and with a condition the first
    event matching it after its position (None: none does) and the head position, both from
    one snapshot."""
    if len(batches) == 1:
        statement = sql.HEAD
        params: list[Any] = [batches[0].stream_id]
    else:
        statement = sql.HEADS
        params = [sorted(b.stream_id for b in batches)]
    if condition is not None:
        # The condition's first match and the head position, in the same statement: one
        # snapshot for the heads, the check and the head.
        query, after = condition.fail_if_events_match, condition.after or 0
        match, match_params = dcb.first_match_and_head(query, after)
        statement = sql.with_columns(statement, match)
        params += match_params
    if stored is None:
        # One statement: sent as it is, not as a pipeline of one, whose entry and exit cost
        # client CPU of their own (measured in _send's docstring).
        rows = yield Run(statement, params)
    else:
        results = yield Pipeline(
            (Run(statement, params), Run(sql.STORED_IDENTITIES, (_uuids(batches),)))
        )
        rows = results[0]
        stored = {r[0]: StoredIdentity(*r) for r in results[1]}
    heads = {r[0]: Head(r[1], r[2], r[3]) for r in rows if r[0] is not None}
    checked: _Checked = None
    if condition is not None:
        found = rows[0]
        checked = (None if found[5] is None else int(found[5]), int(found[6]))
    return heads, int(rows[0][4]), stored, checked


def _stored_identities(batches: list[PreparedAppend]) -> Generator[Op, Any, _Stored]:
    rows = yield Run(sql.STORED_IDENTITIES, (_uuids(batches),))
    return {r[0]: StoredIdentity(*r) for r in rows}


def _uuids(batches: list[PreparedAppend]) -> list[UUID]:
    """The event ids of ``batches`` as UUIDs: only needed off the happy path (lookups)."""
    return [UUID(bytes=ev.event_id) for batch in batches for ev in batch.events]


def _replayed(plan: Plan) -> list[AppendResult]:
    """The results of an append that wrote nothing: every batch a replay."""
    return [step for step in plan.outcomes if isinstance(step, AppendResult)]


def _send(
    rows: list[PlannedRow],
    guard: int | None = None,
    *,
    not_before: bool = False,
    match: tuple[str, list[Any]] | None = None,
    flush: Flush | None = None,
) -> Generator[Op, Any, int]:
    """Send the one statement that inserts a plan's rows, numbered after the head position
    (a version a logged operation removed is refused, SQLSTATE EKC04); returns the first
    position. ``guard``: the head position at which
    a condition was checked; the statement fails (SQLSTATE EKC01) if the head moved.
    ``not_before``: the statement fails (SQLSTATE EKC02) if the log's last event was recorded
    after the rows' time (an append whose time was not read from the server). ``match``: a
    condition's ``dcb.first_match`` statement, checked by the insert statement itself (SQLSTATE
    EKC03 if it finds an event, EKC01 if the head moved after it, EKC02 as ``not_before``).
    ``flush`` (group commit): a statement that found the sequencer's lock taken commits
    asynchronously (and says so, its third column), and ``eventkeep_flush_wal()`` follows it,
    committed on its own, which returns once the WAL is flushed past the append's commit
    (flushes of concurrent writers are shared); one that got the lock at once committed
    synchronously, as without group commit. A second round trip, not a pipeline:
    on loopback psycopg's pipeline mode (with a Sync between the two, so that each commits on
    its own) cost 76-88 µs of client CPU against 41-60 for two plain statements (and 23-28 for
    the insert alone), and more wall time too (122-145 against 75-117 µs)."""
    found = yield _insert(rows, guard, not_before=not_before, match=match)
    assert found is not None
    if flush is not None:
        if found[2]:  # committed asynchronously: it found another append holding the lock
            yield _FLUSH_WAL
        flush.done = True
    return int(found[0])


_FLUSH_WAL = Run(sql.FLUSH_WAL, fetch="none")


def _insert(
    rows: list[PlannedRow],
    guard: int | None = None,
    *,
    not_before: bool = False,
    match: tuple[str, list[Any]] | None = None,
) -> Run:
    """The one statement that inserts a plan's ``rows`` (stamped with one time), its numbering
    function given each stream's first version written (its row: the first position)."""
    now = from_micros(rows[0].recorded_at_us)
    tagged = any(row.tags for row in rows)
    first: tuple[Any, ...] = ()
    variant: Callable[[str], str] = str
    if match is not None:
        first = (*match[1], now)
        variant = functools.partial(_unmatched, match=match[0])
    elif guard is not None:
        first, variant = (guard,), _GUARDED.__getitem__
    elif not_before:
        first, variant = (now,), _NOT_BEFORE.__getitem__
    params: tuple[Any, ...]
    if len(rows) == 1:
        row = rows[0]
        params = (*first, row.stream_id, row.version, *_event_params(row, now))
        if tagged:
            statement = sql.APPEND_TAGGED_EVENT
            params = (*params[:-1], encode_tags(row.tags))
        else:
            statement = sql.APPEND_EVENT
        return Run(variant(statement), params, "one")
    s, v, e, t, sv, _, d, m, h, g = (list(column) for column in zip(*rows, strict=True))
    tags = [encode_tags(x) for x in g]
    # Each stream's first version written: the numbering refuses one a logged operation removed.
    firsts: dict[str, int] = {}
    for row in rows:
        firsts.setdefault(row.stream_id, row.version)
    params = (list(firsts), list(firsts.values()), now, s, v)
    params += ([UUID(bytes=x) for x in e], t, sv, d, m, h, tags)
    if tagged:
        offsets = [n for n, row in enumerate(rows, 1) for _ in row.tags]
        names = [tag for row in rows for tag in row.tags]
        kinds = [row.type for row in rows for _ in row.tags]
        statement = sql.APPEND_TAGGED_EVENTS
        params = (*params, offsets, names, kinds)
    else:
        statement = sql.APPEND_EVENTS
    return Run(variant(statement), (*first, *params), "one")


@functools.lru_cache(maxsize=512)
def _unmatched(statement: str, match: str) -> str:
    return sql.unmatched(statement, match)


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
        None,  # the tags: replaced for APPEND_TAGGED_EVENT (see _insert)
    )


# -- the reads: one statement each -------------------------------------------------------------


def stream_page(
    stream_id: str, low: int, high: int | None, backwards: bool, limit: int, live: bool = False
) -> Run:
    """A page of a stream's events (rows of ``sql.RECORD_COLUMNS`` and the hash); ``live``:
    none if the stream has a tombstone."""
    statement = sql.read_stream(backwards=backwards, live=live)
    top = 2**62 if high is None else high
    if live:
        return Run(statement, (stream_id, low, top, stream_id, limit))
    return Run(statement, (stream_id, low, top, limit))


def all_page(after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None) -> Run:
    """A page of the global log after ``after``, of ``types`` and ``prefix`` (None: all)."""
    where = ""
    params: list[Any] = [after]
    if types is not None:
        where += sql.WHERE_TYPES
        params.append(list(types))
    prefixed, prefix_params = prefix_where(prefix)
    where += prefixed
    params.extend(prefix_params)
    params.append(limit)
    return Run(sql.READ_ALL.format(where=where), params)


def query_page(query: Query, after: int, limit: int) -> Run:
    """A page of the events matching ``query`` after ``after``."""
    return Run(*dcb.read_page(query, after, limit))


def head_position() -> Run:
    return Run(sql.HEAD_POSITION, fetch="one", binary=False)


_record: Callable[..., RecordedEvent] = RecordedEvent


def records(rows: Sequence[Any], codec: Codec) -> list[RecordedEvent]:
    """Rows of ``sql.RECORD_COLUMNS`` as recorded events (decoded lazily, on access)."""
    return [_record(s, v, p, e, t, sv, d, m, r, codec, g) for s, v, p, e, t, sv, d, m, r, g in rows]


def stream_records(rows: Sequence[Any], codec: Codec) -> list[RecordedEvent]:
    """Rows of a stream page (``sql.RECORD_COLUMNS`` and the hash) as recorded events."""
    return [
        _record(s, v, p, e, t, sv, d, m, r, codec, g) for s, v, p, e, t, sv, d, m, r, g, _ in rows
    ]


def page_head(rows: Sequence[Any], high: int | None, backwards: bool, limit: int) -> Head | None:
    """The stream's head, if this page of a stream read (``stream_page``) holds its last event:
    the first row read backwards, or the last of a page forwards that came back short, both
    with no highest version asked for. It is the head as of the read's snapshot."""
    if high is not None or not rows:
        return None
    if backwards:
        row = rows[0]
    elif len(rows) < limit:
        row = rows[-1]
    else:
        return None
    return Head(row[1], row[10], row[8])


def prefix_where(prefix: str | None) -> tuple[str, list[Any]]:
    """The WHERE fragment (and its parameters) keeping events of streams starting with
    ``prefix`` (none for None)."""
    if prefix is None:
        return "", []
    where = ""
    params: list[Any] = []
    if "-" in prefix:
        where += sql.WHERE_CATEGORY
        params.append(prefix.split("-", 1)[0])
    high = prefix_successor(prefix)
    where += sql.WHERE_PREFIX_OPEN if high is None else sql.WHERE_PREFIX_RANGE
    params.extend((prefix, prefix if high is None else high))
    return where, params


def prefix_successor(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (code point order)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000  # surrogates never occur in stored ids: skip them
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None
