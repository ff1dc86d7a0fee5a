"""PostgreSQL for the asyncio API, natively: appends, reads and waiting on psycopg's
``AsyncConnection`` (an ``AsyncConnectionPool``, and one LISTEN connection per store).

Nothing here decides anything: an append is ``plans.append`` (the steps the synchronous store
runs, driven by ``aio_driver.run``), a read page is the synchronous store's statement and row
decoding (``plans.stream_page``, ``plans.records``...), and what comes before and after the I/O
is the synchronous store's own code: checking and encoding an append (``_prepare_many``, which
may ask the key store for keys) runs on a store thread, as does anything else that does I/O
through the synchronous store (a deleted stream's tombstone, the keys of personal data).

The event loop never works long: an append of more than ``plans.HEAVY_ROWS`` events is sent
from a store thread (the same plan, through ``writer.py``), and read pages are turned into
events ``CHUNK`` rows at a time, the loop free in between.

Everything else (transactions, lifecycle, verify, anchors, snapshots, projections'
bookkeeping, moving) runs on the store's threads through the synchronous store, as on the other
backends (``docs/aio.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg

from eventkeep.backends.postgres import aio_driver, lifecycle, plans, sql
from eventkeep.backends.postgres.aio_connection import AsyncDatabase
from eventkeep.backends.postgres.connection import quoted
from eventkeep.backends.postgres.store import PostgresStore
from eventkeep.store import AppendResult, PreparedAppend, StreamAppend
from eventkeep.store.dcb import AppendCondition, Query, QueryResult, check_condition, check_query
from eventkeep.store.erasure import marked_plain
from eventkeep.store.events import Event
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.types import PAGE_SIZE
from eventkeep.store.validation import check_count, check_optional_count, check_stream_id
from eventkeep.telemetry import span

__all__ = ["CHUNK", "LogPages", "NativePostgres", "StreamPages"]

T = TypeVar("T")
Offload = Callable[[Callable[[], T]], Awaitable[T]]

CHUNK = 500
"""Rows turned into events per turn of the loop (about a millisecond of work)."""


class NativePostgres:
    """The asyncio side of one ``PostgresStore``: its pool, its LISTEN task, and the natively
    asynchronous methods. It belongs to the event loop it first runs on."""

    def __init__(self, store: PostgresStore, offload: Offload[Any]) -> None:
        self.store = store
        self._offload = offload
        db = store._db
        self.db = AsyncDatabase(db, min_size=db.pool_min_size, max_size=db.pool_max_size)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self._announced = 0
        self._hook: Callable[[], object] = lambda: None

    # -- the loop it belongs to ----------------------------------------------------------------

    def usable(self) -> bool:
        """Whether calls of the running loop may come here (the loop it opened on, or the first
        one); a store used from another loop goes through the store's threads instead."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return self.loop is None or (self.loop is loop and not loop.is_closed())

    async def _ready(self) -> None:
        """Open the pool on the first call, with its first connection made (so that a pool
        still filling is never mistaken for one in use). Failing to, the next call tries a
        new pool: psycopg_pool closes one that timed out opening."""
        if self._opening is None:
            self.loop = asyncio.get_running_loop()
            opening = self._opening = self.loop.create_future()
            try:
                with self.db.translate(connecting=True):
                    await self.db.open()
            except BaseException as exc:
                self._opening = None
                self.db = AsyncDatabase(
                    self.db.db, min_size=self.db.min_size, max_size=self.db.max_size
                )
                opening.set_exception(exc)
                opening.exception()  # retrieved: the callers waiting get it
                raise
            opening.set_result(None)
        await asyncio.shield(self._opening)

    async def close(self) -> None:
        """Stop listening (its connection closed) and close the pool."""
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.wait({self._listening})  # its end, whatever it was
        if self._opening is not None:
            await self.db.close()

    async def _run(self, steps: plans.Steps) -> Any:
        await self._ready()
        async with self.db.connection() as conn:
            with self.db.translate():
                return await aio_driver.run(conn, steps)

    # -- writing -------------------------------------------------------------------------------

    async def append_many(
        self, appends: Iterable[StreamAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """``EventStore.append_many`` (outside a transaction): checked and encoded on a store
        thread, written here, on the loop."""
        store = self.store
        checked = check_condition(condition)
        batches = await self._offload(functools.partial(store._prepare_many, appends))
        return await self._append(batches, checked)

    async def append_events(
        self,
        events: Iterable[Any],
        condition: AppendCondition | None,
        metadata: Any,
    ) -> AppendResult:
        """``EventStore.append_events`` (outside a transaction)."""
        store = self.store
        checked = check_condition(condition)
        prepare = functools.partial(store._prepare_streamless, events, metadata)
        batch = await self._offload(prepare)
        return (await self._append([batch], checked))[0]

    async def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None
    ) -> list[AppendResult]:
        store = self.store
        if sum(len(batch.events) for batch in batches) > plans.HEAVY_ROWS:
            # Too much work for the loop: the same plan, sent from a store thread.
            sent = functools.partial(store._append_sealed, store._append, batches, condition)
            results: list[AppendResult] = await self._offload(sent)
        else:
            with span("eventkeep.append", streams=len(batches)):
                results = await self._run(plans.append(batches, condition, store._known))
            if any(ev.keys for batch in batches for ev in batch.events):
                # PostgreSQL stores the keys of personal data through its key store, never in
                # the append: no KeyConflictError to retry, only the keys made to cache.
                cached = functools.partial(store._append_sealed, _done(results), batches, condition)
                await self._offload(cached)
        store._notify_appended()
        return results

    # -- reading -------------------------------------------------------------------------------

    async def page(self, step: plans.Run) -> Sequence[RecordedEvent]:
        """One read statement's rows as events, ``CHUNK`` at a time (the loop is free between
        chunks); personal data's keys fetched on a store thread when the page holds some."""
        await self._ready()
        codec = self.store.codec
        events: list[RecordedEvent] = []
        async with self.db.connection() as conn:
            with self.db.translate():
                cur = conn.cursor(binary=True)
                await cur.execute(step.statement, step.params)
                while True:
                    rows = await cur.fetchmany(CHUNK)
                    events += plans.records(rows, codec)
                    if len(rows) < CHUNK:
                        break
                    await asyncio.sleep(0)
        if not marked_plain(events):
            keyed: Sequence[RecordedEvent] = await self._offload(
                functools.partial(self.store._with_personal, events)
            )
            return keyed
        return events

    async def stream_low(self, stream_id: str, low: int) -> int:
        """The first version a read of the stream may return (``_lifecycle_low``): the stream's
        metadata read here; a deleted stream's tombstone looked at on a store thread."""
        row = await self._run(_one(plans.Run(lifecycle.STREAM_META, (stream_id,), "one")))
        if row is None or lifecycle.meta_of(row).deletion is None:
            return low
        lowest = functools.partial(self.store._lifecycle_low, stream_id, low, False)
        result: int = await self._offload(lowest)
        return result

    async def scalar(self, step: plans.Run) -> int:
        row = await self._run(_one(step))
        return int(row[0]) if row else 0

    async def head_position(self) -> int:
        return await self.scalar(plans.head_position())

    async def stream_version(self, stream_id: str) -> int:
        step = plans.Run(sql.STREAM_VERSION, (check_stream_id(stream_id),), "one", False)
        return await self.scalar(step)

    def read_stream(
        self,
        stream_id: str,
        from_version: int,
        to_version: int | None,
        backwards: bool,
        limit: int | None,
    ) -> StreamPages:
        """``EventStore.read_stream`` (its arguments already checked), outside archives."""
        return StreamPages(self, stream_id, from_version, to_version, backwards, limit)

    def read_all(
        self,
        after: int | None,
        limit: int | None,
        types: Iterable[str | type[Event]] | None,
        prefix: str | None,
    ) -> LogPages:
        """``EventStore.read_all`` (its arguments already checked)."""
        names = None if types is None else self.store._type_names(types)
        return LogPages(self, after or 0, limit, types=names, prefix=prefix or None)

    async def read(self, query: Query, after: int | None, limit: int | None) -> QueryResult:
        """``EventStore.read``: the head first, then the pages (see there)."""
        query = check_query(query)
        after = check_count(0 if after is None else after, what="after")
        limit = check_optional_count(limit, what="limit")
        start = await self.head_position()
        events = await LogPages(self, after, limit, query=query).take(None)
        if limit is not None and len(events) >= limit:
            head = events[-1].position if events else after
        else:
            head = max(start, after, events[-1].position if events else 0)
        return QueryResult(events, head)

    # -- waiting for new events ----------------------------------------------------------------

    def listen(self, hook: Callable[[], object]) -> None:
        """Start the store's one LISTEN connection (a task on the loop), which calls ``hook()``
        on the loop whenever a notification announces a new head."""
        self._hook = hook
        if self._listening is None:
            self.loop = self.loop or asyncio.get_running_loop()  # see usable()
            self._listening = self.loop.create_task(self._listen())

    async def _listen(self) -> None:
        """Listen until the store closes; reconnect after a pause when the connection dies."""
        pause = self.store.poll_interval
        statement = sql.LISTEN.format(channel=quoted(self.db.db.channel))
        while True:
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await self.db.connect()
                await conn.execute(statement)
                async for note in conn.notifies():
                    self._announce(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(pause)

    def _announce(self, payload: str) -> None:
        try:
            position = int(payload)
        except ValueError:
            return
        if position > self._announced:
            self._announced = position
            self._hook()


def _done(results: list[AppendResult]) -> Callable[..., list[AppendResult]]:
    """An "append" that has happened: ``_append_sealed`` then only caches the keys made."""
    return lambda batches, condition: results


def _one(step: plans.Run) -> plans.Steps:
    """A plan of one statement."""
    result = yield step
    return result


class _Pages:
    """A native read, a page at a time: the paging of ``EventStore._paged_*`` (the next page
    starts after the last event; a short page is the end). Between two ``take`` calls the
    next page is already asked for (its statement sent: the server works while the caller
    goes through the events handed out)."""

    def __init__(self, native: NativePostgres, remaining: int | None) -> None:
        self._native = native
        self._remaining = remaining
        self._done = False
        self._ahead: asyncio.Task[Sequence[RecordedEvent]] | None = None

    def _step(self, size: int) -> plans.Run:
        raise NotImplementedError

    def _after(self, page: Sequence[RecordedEvent]) -> None:
        """Move past ``page`` (a full one)."""
        raise NotImplementedError

    async def _start(self) -> None:
        """Before the first page."""

    def _where(self) -> dict[str, Any]:
        """The read's attributes in telemetry."""
        raise NotImplementedError

    def _size(self) -> int:
        remaining = self._remaining
        return PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)

    async def take(self, count: int | None) -> list[RecordedEvent]:
        """Up to ``count`` more events (None: all); fewer only at the end."""
        await self._start()
        out: list[RecordedEvent] = []
        while not self._done and (count is None or len(out) < count):
            size = self._size()
            if size <= 0:
                self._done = True
                break
            ahead, self._ahead = self._ahead, None
            with span("eventkeep.read", **self._where()):
                page = await (ahead if ahead is not None else self._native.page(self._step(size)))
            out += page
            if len(page) < size:
                self._done = True
                break
            if self._remaining is not None:
                self._remaining -= len(page)
            self._after(page)
        if not self._done and self._size() > 0:
            self._ahead = asyncio.ensure_future(self._native.page(self._step(self._size())))
            self._ahead.add_done_callback(_retrieved)
            await asyncio.sleep(0)  # the read ahead sends its statement
        return out


def _retrieved(task: asyncio.Task[Any]) -> None:
    """A read ahead nobody took (the caller stopped reading): its error goes nowhere."""
    if not task.cancelled():
        task.exception()


class StreamPages(_Pages):
    """``read_stream``'s events, read natively (``EventStore._paged_stream``); the first
    ``take`` looks for a tombstone."""

    def __init__(
        self,
        native: NativePostgres,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        remaining: int | None,
    ) -> None:
        super().__init__(native, remaining)
        self._stream_id = stream_id
        self._low, self._high = low, high
        self._backwards = backwards
        self._started = False

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            self._low = await self._native.stream_low(self._stream_id, self._low)

    def _where(self) -> dict[str, Any]:
        return {"stream_id": self._stream_id}

    def _step(self, size: int) -> plans.Run:
        return plans.stream_page(self._stream_id, self._low, self._high, self._backwards, size)

    def _after(self, page: Sequence[RecordedEvent]) -> None:
        if self._backwards:
            self._high = page[-1].version - 1
        else:
            self._low = page[-1].version + 1


class LogPages(_Pages):
    """``read_all``'s or a query's events, read natively (``EventStore._paged_all`` and
    ``_paged_query``)."""

    def __init__(
        self,
        native: NativePostgres,
        after: int,
        remaining: int | None,
        *,
        types: tuple[str, ...] | None = None,
        prefix: str | None = None,
        query: Query | None = None,
    ) -> None:
        super().__init__(native, remaining)
        self._position = after
        self._types, self._prefix, self._query = types, prefix, query
        self._done = types == ()

    def _where(self) -> dict[str, Any]:
        return {"after": self._position, **({} if self._query is None else {"query": True})}

    def _step(self, size: int) -> plans.Run:
        if self._query is None:
            return plans.all_page(self._position, size, self._types, self._prefix)
        return plans.query_page(self._query, self._position, size)

    def _after(self, page: Sequence[RecordedEvent]) -> None:
        self._position = page[-1].position
