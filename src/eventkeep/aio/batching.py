"""Appends of many tasks written together: what makes many concurrent tasks faster than threads.

A store numbers appends one at a time: PostgreSQL's sequencer and SQLite's write lock are held
until the commit is durable, so appends commit one after another, each waiting for its own
flush to disk, however many callers send them at once. Eight threads or a hundred tasks: the
same number of commits per second.

The async store therefore writes the appends that tasks send while one is being written as one
``append_many`` (natural batching: no timer, a lone append is sent at once). Each caller still
gets its own result (its versions and positions) or its own error, and each append is still
atomic; appends of one stream keep their order (a group takes each stream at most once).
When the group is refused as a whole for something that leaves nothing stored:

- a ``ConcurrencyError`` (or ``AppendConditionError``) names its stream: that caller gets the
  error, exactly as it would have alone, and the others are written again as a group;
- bad input (``ValidationError``, ``SerializationError``) or a ``DuplicateEventIdError``: each
  append is sent again on its own, so that each caller gets its own outcome.

Any other error (a lost connection, whose outcome is unknown) is raised to every caller of the
group, as it would be to each alone: retrying with the same event ids is safe, as always.
Appends inside a transaction, and appends with a condition, are never batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from eventkeep.errors import (
    ConcurrencyError,
    DuplicateEventIdError,
    SerializationError,
    ValidationError,
)
from eventkeep.store import AppendResult, StreamAppend

__all__ = ["Batcher"]

MAX_APPENDS = 500
"""Appends (``StreamAppend`` items) in one group at most."""

_ALONE = (ValidationError, SerializationError, DuplicateEventIdError)
"""Refusals of a whole group that do not say whose append it was: each is sent again alone."""

AppendMany = Callable[[list[StreamAppend]], Awaitable[list[AppendResult]]]
"""Writes a group: the store's ``append_many``, natively or on a store thread."""


class _Unit(NamedTuple):
    """One caller's appends (atomic together) and where its result goes."""

    appends: list[StreamAppend]
    done: asyncio.Future[list[AppendResult]]


class Batcher:
    """The queue of appends waiting to be written, and the task that writes them."""

    def __init__(self, append_many: AppendMany) -> None:
        self._append_many = append_many
        self._waiting: list[_Unit] = []
        self._writing: asyncio.Task[None] | None = None

    async def append_many(self, appends: list[StreamAppend]) -> list[AppendResult]:
        """Queue ``appends`` (already a list of ``StreamAppend``); their results when written.
        Cancelled while still queued, they are never written."""
        loop = asyncio.get_running_loop()
        unit = _Unit(appends, loop.create_future())
        self._waiting.append(unit)
        if self._writing is None:
            self._writing = loop.create_task(self._write_all())
        return await unit.done

    async def _write_all(self) -> None:
        group: list[_Unit] = []
        try:
            while self._waiting:
                group = self._take()
                await self._write(group)
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            _fail([*group, *self._waiting], exc)
            self._waiting = []
            raise
        finally:
            self._writing = None

    def _take(self) -> list[_Unit]:
        """The next group: waiting units in order, each stream at most once; a unit that
        shares a stream with one left for later waits too (a stream's appends keep their
        order). A unit too big for a group, or naming a stream twice, goes alone."""
        group: list[_Unit] = []
        later: list[_Unit] = []
        taken: set[str] = set()
        blocked: set[str] = set()
        count = 0
        waiting = [unit for unit in self._waiting if not unit.done.done()]
        for n, unit in enumerate(waiting):
            ids = [item.stream_id for item in unit.appends]
            valid = all(isinstance(i, str) for i in ids)  # else refused alone, with its error
            streams = set(ids) if valid else set()
            alone = not valid or len(streams) < len(ids) or len(ids) > MAX_APPENDS
            if not group and alone:
                self._waiting = waiting[n + 1 :]
                return [unit]
            if alone or streams & (taken | blocked) or count + len(unit.appends) > MAX_APPENDS:
                later.append(unit)
                blocked |= streams
                continue
            group.append(unit)
            taken |= streams
            count += len(unit.appends)
        self._waiting = later
        return group

    async def _write(self, group: list[_Unit]) -> None:
        while group:
            appends = [item for unit in group for item in unit.appends]
            try:
                results = await self._append_many(appends)
            except ConcurrencyError as exc:
                refused = [u for u in group if any(a.stream_id == exc.stream_id for a in u.appends)]
                if len(refused) != 1 or len(group) == 1:
                    _fail(group, exc)
                    return
                _fail(refused, exc)
                group = [unit for unit in group if unit is not refused[0]]
                continue
            except _ALONE as exc:
                if len(group) == 1:
                    _fail(group, exc)
                    return
                await asyncio.gather(*(self._write([unit]) for unit in group))
                return
            except BaseException as exc:
                _fail(group, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            start = 0
            for unit in group:
                end = start + len(unit.appends)
                if not unit.done.done():
                    unit.done.set_result(results[start:end])
                start = end
            return


def _fail(units: list[_Unit], exc: BaseException) -> None:
    for unit in units:
        if not unit.done.done():
            unit.done.set_exception(exc)
