"""The SQLite store's append, on a cursor in a write transaction: fetch the heads (and the
stored event ids when the plan needs them), plan with :func:`eventkeep.store.planner.plan_append`,
insert the planned rows, their tags and the new stream heads. The store's group commit
(:mod:`eventkeep.backends.sqlite.group_commit`) and its transactions call :func:`append_in`."""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

from eventkeep.backends.sqlite import dcb, keys, sql
from eventkeep.store.dcb import AppendCondition
from eventkeep.store.planner import Head, PlannedRow, new_heads, plan_append
from eventkeep.store.tags import encode_tags
from eventkeep.store.types import AppendResult, PreparedAppend, StoredIdentity

__all__ = ["Known", "append_in", "insert_at", "last_recorded_at"]

_MAX_PARAMS = 500
_TAGS = operator.itemgetter(9)  # PlannedRow.tags
_UNTAGGED = operator.itemgetter(slice(0, 9))  # PlannedRow but its tags
_MAX_KNOWN_HEADS = 4096


class Known:
    """What the store's write connection knows of the database from its own appends, so that
    the next append need not ask: the last event's time, that no removed position lies above
    the last event, and the heads of the streams it appended to.

    Valid only while nothing else has written: :meth:`check` runs first in each write
    transaction, after SQLite's write lock is taken, and forgets everything when another
    connection (of this process or another) has committed since (``PRAGMA data_version``
    changed). The store forgets it after any write transaction that is not an append
    (lifecycle operations, imports, store transactions running SQL of their own) and after a
    rollback. Appends then read what they need, as without it. Measured: two of the seven
    statements of a one-event append to an existing stream, three when the stream is
    already known.
    """

    __slots__ = ("_data_version", "heads", "last_position", "last_recorded_at", "no_floor")

    def __init__(self) -> None:
        self._data_version: int | None = None
        self.forget()

    def forget(self) -> None:
        self.last_recorded_at: int | None = None
        self.no_floor = False
        self.heads: dict[str, Head] = {}
        # DCB: the log's last event, which this connection wrote (see _condition_matched).
        self.last_position: int | None = None

    def forget_heads(self) -> None:
        """Forget the streams' heads only (the next append to each reads it)."""
        self.heads = {}

    def check(self, cur: sqlite3.Cursor) -> None:
        """At the start of an append's write transaction (the write lock held)."""
        version = int(cur.execute(sql.DATA_VERSION).fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            self.forget()

    def wrote(self, written: list[tuple[int, PlannedRow]], recorded_at: int) -> None:
        """Rows were inserted (in the open transaction): ``written``, the streams' new heads
        (``planner.new_heads``), at ``recorded_at``."""
        heads = self.heads
        if len(heads) > _MAX_KNOWN_HEADS:
            heads.clear()
        for _, row in written:
            heads[row.stream_id] = Head(row.version, row.hash)
        self.last_recorded_at = recorded_at
        self.no_floor = True  # the log's last position is now an event's


def append_in(
    cur: sqlite3.Cursor,
    batches: list[PreparedAppend],
    now: int,
    condition: AppendCondition | None = None,
    known: Known | None = None,
) -> list[AppendResult]:
    """Plan and write ``batches`` in the write transaction open on ``cur``.

    The event ids are looked up only when the plan needs them: an expected version did not
    match, or the event-id index refused the insert (a retried append, or a reused id).
    An ``EventkeepError`` (a conflict, a refused event id) is raised only before anything
    is written (group commit relies on it); database errors may come at any point.
    The condition is checked here, under the write lock: no append can come in between.
    ``known``: what the store's write connection knows already (checked by the caller in
    this transaction), kept up to date with what this append writes.
    """
    keys.store_new_keys(cur, batches, now)
    heads = _heads(cur, batches, known)
    matched = None if condition is None else _condition_matched(cur, condition, known)
    stored: dict[bytes, StoredIdentity] | None = None
    while True:
        plan = plan_append(batches, heads, stored, condition, matched)
        if plan.needs_ids:
            stored = _stored_identities(cur, batches)
            continue
        if plan.conflict is not None:
            raise plan.conflict
        if not plan.writes:
            return plan.results(0)
        rows = plan.rows(now)
        try:
            last = _insert(cur, rows, known)
        except sqlite3.IntegrityError:
            if stored is not None:
                raise
            stored = _stored_identities(cur, batches)
            continue
        first = last - len(rows) + 1
        results = plan.results(first)
        if any(map(_TAGS, rows)):
            cur.executemany(
                sql.INSERT_TAG,
                [
                    (tag, first + offset, row.type)
                    for offset, row in enumerate(rows)
                    for tag in row.tags
                ],
            )
        written = new_heads(rows)
        if len(written) == 1:
            offset, row = written[0]
            cur.execute(sql.UPSERT_STREAM, (row.stream_id, row.version, first + offset, row.hash))
        else:
            cur.executemany(
                sql.UPSERT_STREAM,
                [(row.stream_id, row.version, first + offset, row.hash) for offset, row in written],
            )
        if known is not None:
            known.wrote(written, rows[-1].recorded_at_us)
            known.last_position = last
        return results


def _condition_matched(
    cur: sqlite3.Cursor, condition: AppendCondition, known: Known | None
) -> int | None:
    """The first event matching ``condition``'s query after its position, or None.

    When the condition's position is at (or past) the log's last event, as known from this
    connection's own last append (nothing committed by anyone else since, see
    :class:`Known`), no event can lie after it: the probe is skipped. That is the usual
    case of a decision that read its query and appended next.
    """
    after = condition.after or 0
    if known is not None and known.last_position is not None and after >= known.last_position:
        return None
    statement, params = dcb.first_match(condition.fail_if_events_match, after)
    found: int | None = cur.execute(statement, params).fetchone()[0]
    return found


def last_recorded_at(cur: sqlite3.Cursor, known: Known | None = None) -> int:
    """The latest recorded time in the store (the floor of the next append's clock)."""
    if known is not None and known.last_recorded_at is not None:
        return known.last_recorded_at
    row = cur.execute(sql.LAST_RECORDED_AT).fetchone()
    return int(row[0]) if row else 0


def _insert(cur: sqlite3.Cursor, rows: list[PlannedRow], known: Known | None) -> int:
    """Insert ``rows``, all or none; returns the position of the last one."""
    floor = None if known is not None and known.no_floor else _position_floor(cur)
    if floor is not None:  # the log's last events were removed: number above them
        first = int(floor) + 1
        return insert_at(cur, rows, range(first, first + len(rows)))
    _insert_rows(cur, rows, None)
    last = cur.lastrowid
    assert last is not None
    return last


def _position_floor(cur: sqlite3.Cursor) -> int | None:
    """The last removed position when it lies above the last event (appends number above it)."""
    found = cur.execute(sql.POSITION_FLOOR).fetchone()[0]
    return None if found is None else int(found)


def insert_at(cur: sqlite3.Cursor, rows: list[PlannedRow], positions: Sequence[int]) -> int:
    """Insert ``rows`` at ``positions`` (ascending), all or none; returns the last one."""
    _insert_rows(cur, rows, positions)
    return positions[-1]


def chunk_sizes(count: int, most: int) -> list[int]:
    """How many rows each INSERT of ``count`` rows takes: one statement for up to 32 rows,
    else chunks of 128, 64 and 32 rows and one for the rest. So a connection prepares at most
    34 texts per kind of insert (sqlite3 caches 128 per connection), and ``most`` rows (the
    connection's limit on parameters) are never exceeded."""
    sizes = [size for size in (128, 64, 32) if size <= most] or [max(most, 1)]
    if count <= sizes[-1]:
        return [count]
    out: list[int] = []
    for size in sizes:
        while count >= size:
            out.append(size)
            count -= size
    if count:
        out.append(count)
    return out


def _insert_rows(
    cur: sqlite3.Cursor, rows: list[PlannedRow], positions: Sequence[int] | None
) -> None:
    """INSERT ``rows`` in as few multi-row statements as :func:`chunk_sizes` allows, all or
    none: one statement undoes itself when refused, several run in a savepoint."""
    at = positions is not None
    tagged = any(map(_TAGS, rows))  # map with an itemgetter: no Python frame per row
    if len(rows) == 1 and not tagged and not at:  # the most common append: one event
        cur.execute(sql.insert_events(1, at=False, tagged=False), _UNTAGGED(rows[0]))
        return
    if tagged:
        params: list[Any] = [
            (*row[:9], encode_tags(row.tags) if row.tags else None) for row in rows
        ]
    else:
        params = list(map(_UNTAGGED, rows))
    if positions is not None:
        params = [(position, *row) for position, row in zip(positions, params, strict=True)]
    per_row = len(params[0])
    most = cur.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // per_row
    sizes = chunk_sizes(len(params), most)
    flat = chain.from_iterable
    if len(sizes) == 1:
        cur.execute(sql.insert_events(sizes[0], at=at, tagged=tagged), list(flat(params)))
        return
    cur.execute(sql.INSERT_SAVEPOINT)
    try:
        start = 0
        for size in sizes:
            statement = sql.insert_events(size, at=at, tagged=tagged)
            cur.execute(statement, list(flat(params[start : start + size])))
            start += size
    except sqlite3.IntegrityError:
        cur.execute(sql.ROLLBACK_TO_INSERT_SAVEPOINT)
        cur.execute(sql.RELEASE_INSERT_SAVEPOINT)
        raise
    cur.execute(sql.RELEASE_INSERT_SAVEPOINT)


def _heads(
    cur: sqlite3.Cursor, batches: list[PreparedAppend], known: Known | None
) -> dict[str, Head]:
    heads: dict[str, Head] = {}
    cached = known.heads if known is not None else {}
    for batch in batches:
        head = cached.get(batch.stream_id)
        if head is not None:
            heads[batch.stream_id] = head
            continue
        row = cur.execute(sql.STREAM_HEAD, (batch.stream_id,)).fetchone()
        if row is not None:
            heads[batch.stream_id] = Head(row[0], row[1])
    return heads


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
