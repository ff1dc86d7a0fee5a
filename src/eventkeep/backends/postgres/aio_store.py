"""PostgreSQL for the asyncio API, natively: appends, the head, a stream's version and waiting
on psycopg's ``AsyncConnection`` (an ``AsyncConnectionPool``, and one LISTEN connection per
store).

Nothing here decides anything: an append is ``plans.append`` (the steps the synchronous store
runs, driven by ``aio_driver.run``), and what comes before and after the I/O is the synchronous
store's own code: checking and encoding an append (``_prepare_many``, which may ask the key
store for keys) runs on a store thread.

The event loop never works long: an append of more than ``plans.HEAVY_ROWS`` events is sent
from a store thread (the same plan, through ``writer.py``).

Reads (``read_stream``, ``read_all``, ``read``, a subscription's batches) are not here: they
run the synchronous store's reads on a store thread, a page per hand-over, as on the other
backends. Measured (``docs/aio.md``), a page of 1,000 rows costs psycopg's ``AsyncConnection``
about a fifth more CPU than the synchronous connection, which waits for the rows in C, and the
thread's hand-over costs less than that difference. Everything else (transactions, lifecycle,
verify, anchors, snapshots, projections' bookkeeping, moving) runs on the store's threads
through the synchronous store too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import psycopg

from eventkeep.backends.postgres import aio_driver, plans, sql
from eventkeep.backends.postgres.aio_connection import AsyncDatabase
from eventkeep.backends.postgres.connection import quoted
from eventkeep.backends.postgres.store import PostgresStore
from eventkeep.store import AppendResult, PreparedAppend, StreamAppend
from eventkeep.store.dcb import AppendCondition, check_condition
from eventkeep.store.validation import check_stream_id
from eventkeep.telemetry import span

__all__ = ["NativePostgres"]

T = TypeVar("T")
Offload = Callable[[Callable[[], T]], Awaitable[T]]


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
                group = store._db.group_commit
                steps = plans.append(batches, condition, store._known, group_commit=group)
                results = await self._run(steps)
                if group and results:
                    store._durable.learned(*(r.position for r in results))
            if any(ev.keys for batch in batches for ev in batch.events):
                # PostgreSQL stores the keys of personal data through its key store, never in
                # the append: no KeyConflictError to retry, only the keys made to cache.
                cached = functools.partial(store._append_sealed, _done(results), batches, condition)
                await self._offload(cached)
        store._notify_appended()
        return results

    # -- the head and a stream's version -----------------------------------------------------------

    async def scalar(self, step: plans.Run) -> int:
        row = await self._run(_one(step))
        return int(row[0]) if row else 0

    async def head_position(self) -> int:
        head = await self.scalar(plans.head_position())
        if self.store._durable.needs(head):  # group commit: flushed before it is returned
            row = await self._run(_one(plans.Run(sql.FLUSH_WAL_HEAD, None, "one", False)))
            self.store._durable.learned(head, int(row[1]) if row else 0)
        return head

    async def stream_version(self, stream_id: str) -> int:
        step = plans.Run(sql.STREAM_VERSION, (check_stream_id(stream_id),), "one", False)
        return await self.scalar(step)

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
