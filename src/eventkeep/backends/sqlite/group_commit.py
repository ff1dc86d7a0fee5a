"""Group commit for the SQLite store: appends that threads of one store make at the same time
share one write transaction and one commit (one fsync for all); a conflict fails that append
only. :class:`~eventkeep.backends.sqlite.store.SQLiteStore` mixes in :class:`GroupCommit`,
which implements the store's ``_append`` primitive over the store's ``_write`` transaction and
its ``_append_in`` (:func:`eventkeep.backends.sqlite.writing.append_in`)."""

from __future__ import annotations

import contextlib
import copy
import sqlite3
import threading
from typing import TYPE_CHECKING

from eventkeep.backends.sqlite.writing import Known, last_recorded_at
from eventkeep.errors import BackendUnavailableError, EventkeepError

if TYPE_CHECKING:
    from eventkeep.store.dcb import AppendCondition
    from eventkeep.store.types import AppendResult, PreparedAppend

__all__ = ["GroupCommit"]


class GroupCommit:
    """Mixed into ``SQLiteStore``: its ``_append``, writing the appends queued by its threads
    in one transaction. ``_start_group_commit`` sets up the queue (the store's ``__init__``)."""

    url: str
    _lock: threading.RLock
    _group: threading.Condition
    _group_lock: threading.Lock
    _queued: list[_PendingAppend]
    _leading: bool
    _waiting: int
    _known: Known

    if TYPE_CHECKING:  # SQLiteStore's and EventStore's

        def _write(
            self, *, appending: bool = False
        ) -> contextlib.AbstractContextManager[sqlite3.Cursor]: ...

        def _append_in(
            self,
            cur: sqlite3.Cursor,
            batches: list[PreparedAppend],
            now: int,
            condition: AppendCondition | None = None,
            known: Known | None = None,
        ) -> list[AppendResult]: ...

        def _clock(self, floor: int = 0) -> int: ...

    def _start_group_commit(self) -> None:
        """Appends queued by threads, and whether one of them is writing a group."""
        # The condition's lock, taken directly where nobody waits: ``with condition`` costs
        # a Python-level call, twice per append.
        self._group_lock = threading.Lock()
        self._group = threading.Condition(self._group_lock)
        self._queued = []
        self._leading = False
        self._waiting = 0  # threads waiting in the queue

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Append in a write transaction shared, with its commit, with the appends other
        threads of this store make meanwhile (group commit).

        A thread that finds nobody writing leads: once it holds the write lock it takes every
        append queued by then (its own included) and writes them in one transaction. Threads
        that queue meanwhile wait, and one of them leads the next group.
        """
        with self._group_lock:
            # Nobody leading, nobody queued, the writer free: write at once, without the queue
            # (threads that append meanwhile queue, and one of them leads the next group).
            alone = not self._leading and not self._queued and self._lock.acquire(blocking=False)
            if alone:
                self._leading = True
        if alone:
            try:
                with self._write(appending=True) as cur:
                    now = self._clock(last_recorded_at(cur, self._known))
                    return self._append_with(cur, batches, now, condition)
            finally:
                self._lock.release()
                with self._group_lock:
                    self._leading = False
                    if self._waiting:
                        self._group.notify_all()
        request = _PendingAppend(batches, condition)
        with self._group:
            self._queued.append(request)
            if self._leading:
                self._waiting += 1
                try:
                    while request.outcome is None and self._leading:
                        self._group.wait()
                except BaseException:  # interrupted while queued: not written, unless taken
                    if request in self._queued:
                        self._queued.remove(request)
                    raise
                finally:
                    self._waiting -= 1
                if request.outcome is not None:
                    return request.result()
            self._leading = True
        try:
            self._write_queued(request)
        finally:
            with self._group:
                self._leading = False
                if self._waiting:
                    self._group.notify_all()
        return request.result()

    def _write_queued(self, leader: _PendingAppend) -> None:
        """Write the queued appends in one transaction and give each its outcome.

        A conflict or a refused event id fails that append only (it has written nothing). A
        database error inside one append rolls the transaction back, and each append is then
        written alone, to get the outcome it would have had alone. When the transaction
        itself fails: without the write lock (busy_timeout) only the leader's append fails and
        the others wait for the next leader; a failed COMMIT fails them all (nothing written).
        """
        group: list[_PendingAppend] = []
        outcomes: list[list[AppendResult] | EventkeepError] = []
        try:
            try:
                with self._write(appending=True) as cur:
                    with self._group:
                        group, self._queued = self._queued, []
                    floor = last_recorded_at(cur, self._known)
                    if len(group) == 1:  # alone: an error rolls back the whole transaction
                        first = group[0]
                        now = self._clock(floor)
                        outcomes.append(self._append_with(cur, first.batches, now, first.condition))
                    else:
                        for request in group:
                            now = self._clock(floor)
                            outcomes.append(
                                self._append_in_group(cur, request.batches, now, request.condition)
                            )
            except Exception as exc:
                if not group:
                    self._unqueue(leader)
                    leader.outcome = exc
                elif len(group) == 1 or len(outcomes) == len(group):
                    for n, request in enumerate(group):
                        request.outcome = exc if n == 0 else _copy_error(exc)
                else:
                    for request in group:
                        request.outcome = self._write_alone(request.batches, request.condition)
                return
            for request, outcome in zip(group, outcomes, strict=True):
                request.outcome = outcome
        except BaseException as exc:  # interrupted: tell the threads waiting for this group
            self._unqueue(leader)
            for request in group:
                if request.outcome is None:
                    request.outcome = BackendUnavailableError(
                        f"{self.url}: the append was not written: the thread writing it "
                        f"was interrupted ({exc!r})"
                    )
            raise

    def _unqueue(self, request: _PendingAppend) -> None:
        with self._group:
            if request in self._queued:
                self._queued.remove(request)

    def _write_alone(
        self, batches: list[PreparedAppend], condition: AppendCondition | None
    ) -> list[AppendResult] | Exception:
        try:
            with self._write(appending=True) as cur:
                now = self._clock(last_recorded_at(cur, self._known))
                return self._append_with(cur, batches, now, condition)
        except Exception as exc:
            return exc

    def _append_in_group(
        self,
        cur: sqlite3.Cursor,
        batches: list[PreparedAppend],
        now: int,
        condition: AppendCondition | None,
    ) -> list[AppendResult] | EventkeepError:
        """``_append_in`` for one append of a group: a conflict or a refused event id is
        returned (that append's outcome), and the group goes on.

        No savepoint is needed: ``_append_in`` raises an ``EventkeepError`` only before it
        has written anything. Should that ever change, the error is raised instead, and the
        group is rolled back and written append by append.
        """
        conn = cur.connection
        changes = conn.total_changes
        try:
            return self._append_with(cur, batches, now, condition)
        except EventkeepError as exc:
            if conn.total_changes != changes:
                raise
            return exc

    def _append_with(
        self,
        cur: sqlite3.Cursor,
        batches: list[PreparedAppend],
        now: int,
        condition: AppendCondition | None,
    ) -> list[AppendResult]:
        """``_append_in`` with what the store knows (``Known``, checked by ``_write``)."""
        return self._append_in(cur, batches, now, condition, self._known)


class _PendingAppend:
    """One thread's append, queued for the next group commit; ``outcome`` is set once it is
    written (its results) or refused (the error to raise)."""

    __slots__ = ("batches", "condition", "outcome")

    def __init__(self, batches: list[PreparedAppend], condition: AppendCondition | None) -> None:
        self.batches = batches
        self.condition = condition
        self.outcome: list[AppendResult] | BaseException | None = None

    def result(self) -> list[AppendResult]:
        outcome = self.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome


def _copy_error(exc: Exception) -> Exception:
    """A copy of ``exc`` for each thread that raises it (raising adds to its traceback)."""
    try:
        clone = copy.copy(exc)
    except Exception:  # an exception that cannot be rebuilt from its arguments: share it
        return exc
    clone.__cause__ = exc.__cause__
    return clone
