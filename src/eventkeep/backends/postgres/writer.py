"""The append path on a ``psycopg.Connection``: the steps of ``plans.py`` (shared with the
asyncio API, whose driver is ``aio_driver.py``), run by :func:`run`.

The append: read the heads, then one transaction that numbers and writes the events.

1. Read (one round trip, no transaction to speak of, no lock): the heads of the streams written
   and the server's clock. Check expected versions and chain the hashes in Python.
2. Write (one round trip, one statement, its own transaction): insert the events (``VALUES``
   for one event, binary arrays for more; no head is stored, migration 0018), numbered above
   the head position that ``eventkeep_append_position()`` returns once it holds the
   sequencer's lock (refusing a version a logged operation removed); notify the
   store's channel; commit (synchronously; with group commit, when the statement had to wait
   for the lock, asynchronously, and one more round trip, a synchronous commit of its own,
   waits for a flush that concurrent appends share: ``plans.Flush``, migration
   ``0017_group_commit.sql``). The statement and its
   parameters are on the server before the lock is taken, and the commit follows at once:
   the lock is held from its grant to the commit, never while the server waits for a
   client. Appends are numbered in commit order: every snapshot that sees position N sees
   every position below N, so a reader never skips an event.

A head read in step 1 can be stale by step 2: another writer appended to the stream in between.
Then the events' primary key ``(stream_id, version)`` refuses the insert (versions are dense, so
a changed head always means the version we write exists), the transaction rolls back, and the
append is redone from step 1. That key is the compare-and-set: no row lock is ever held across a
round trip, and a writer never holds a row lock while it waits for the sequencer.

What the append does is decided by :func:`eventkeep.store.planner.plan_append`, as on every backend;
``plans.py`` only fetches heads and event ids, and writes rows. Idempotency costs nothing on the
happy path: the stored event ids are looked up only when the plan needs them (an expected
version did not match: a retry of an append that went through looks exactly like that) or when
a unique index refused the insert.

Under contention (a hot stream, many writers) the optimistic attempt can keep losing the race.
After a few lost races the append takes the sequencer's lock first, in one transaction, and
then reads locked heads: nothing can change them before it commits, so it cannot lose again.
An ``ANY`` append therefore always goes through, however busy the stream. See
``migrations/0004_uncontended_numbering.sql`` and ``docs/postgres.md``.

An append with a condition (:class:`eventkeep.store.dcb.AppendCondition`) is checked where no
append can commit in between: by the insert statement itself when the store knows its heads and
the clock (one round trip: the statement reads "the first event matching the query after P"
and the head position from its snapshot, and its numbering function refuses the insert if
either a match was found or the head moved before it took the sequencer's lock, migration
0013), else read beside the heads and proven by the same head check (two round trips), else
under the sequencer's lock. It adds no lock of its own. See ``plans._append_known``
and docs/dcb.md.
"""

from __future__ import annotations

from typing import Any

import psycopg

from eventkeep.backends.postgres import plans, sql
from eventkeep.backends.postgres.connection import reused_cursor
from eventkeep.backends.postgres.plans import (
    InTransaction,
    Op,
    Pipeline,
    Rollback,
    Run,
    Steps,
)
from eventkeep.store import AppendResult, PreparedAppend
from eventkeep.store.dcb import AppendCondition

__all__ = ["append", "append_in_transaction", "run"]


def append(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
    known: plans.Known | None = None,
    group_commit: bool = False,
) -> list[AppendResult]:
    """Append ``batches`` atomically on ``conn`` (autocommit, configured for the store);
    ``known``: the store's :class:`~eventkeep.backends.postgres.plans.Known`;
    ``group_commit``: see :class:`~eventkeep.backends.postgres.plans.Flush`."""
    steps = plans.append(batches, condition, known, group_commit=group_commit)
    result: list[AppendResult] = run(conn, steps)
    return result


def append_in_transaction(
    conn: psycopg.Connection[Any],
    batches: list[PreparedAppend],
    condition: AppendCondition | None = None,
) -> list[AppendResult]:
    """Append ``batches`` inside the open store transaction on ``conn`` (see
    :func:`plans.append_in_transaction`)."""
    result: list[AppendResult] = run(conn, plans.append_in_transaction(batches, condition))
    return result


def run(conn: psycopg.Connection[Any], steps: Steps) -> Any:
    """Run a plan on ``conn``: each operation it yields is done here, its result sent back in,
    and what it raised thrown back in; the plan's return value is returned."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(result) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            error = None
        try:
            result = _do(conn, op)
        except BaseException as exc:
            result, error = None, exc


def _do(conn: psycopg.Connection[Any], op: Op) -> Any:
    if isinstance(op, Run):
        return _fetch(_reused_cursor(conn, op), op)
    if isinstance(op, Pipeline):
        with conn.pipeline():
            cursors = [_execute(conn, step) for step in op.steps]
        return [_fetch(cur, step) for cur, step in zip(cursors, op.steps, strict=True)]
    if isinstance(op, InTransaction):
        with conn.transaction():
            return run(conn, op.steps)
    if isinstance(op, Rollback):
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute(sql.ROLLBACK)
        return None
    raise AssertionError(f"not an operation: {op!r}")  # pragma: no cover


def _reused_cursor(conn: psycopg.Connection[Any], step: Run) -> psycopg.Cursor[Any]:
    cur = reused_cursor(conn, step.binary)
    cur.execute(step.statement, step.params)
    return cur


def _execute(conn: psycopg.Connection[Any], step: Run) -> psycopg.Cursor[Any]:
    cur = conn.cursor(binary=step.binary)
    cur.execute(step.statement, step.params)
    return cur


def _fetch(cur: psycopg.Cursor[Any], step: Run) -> Any:
    if step.fetch == "all":
        return cur.fetchall()
    if step.fetch == "one":
        return cur.fetchone()
    return None
