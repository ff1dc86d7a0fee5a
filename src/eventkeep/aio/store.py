"""``AsyncEventStore``: the ``EventStore`` API for asyncio, over the same store.

Every method has the name and the arguments of its ``EventStore`` counterpart and is awaited
(reads return async iterators). Each call is the synchronous store's own method, run on one of
the store's threads: the checks, the encoding, the append planner, the hash chain and the SQL
are the ones the synchronous API runs, so both APIs give the same results, the same errors and
the same guarantees. On PostgreSQL, appends, the head and waiting are native instead
(:mod:`eventkeep.aio.native`): the same plans, run on psycopg's ``AsyncConnection``. The event
loop never waits for the database.

Transactions are per task: inside ``async with store.transaction() as tx``, store methods
awaited by the same task join the transaction (as on the synchronous store, where calls on the
transaction's thread join it), and opening a second one in that task raises
``ValidationError``. Tasks started inside the block inherit it (their calls join it, one at a
time).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from eventkeep import telemetry
from eventkeep.aio import native
from eventkeep.aio._threads import StoreThreads, TransactionThreads, whole
from eventkeep.aio.batching import Batcher
from eventkeep.aio.events import Call, Events, stream_read
from eventkeep.aio.lifecycle import LifecycleMethods
from eventkeep.aio.transaction import AsyncTransaction, TransactionBlock
from eventkeep.errors import ConfigurationError, ValidationError
from eventkeep.store import (
    ANY,
    AppendResult,
    EventStore,
    Expected,
    Snapshot,
    StoreStats,
    StreamAppend,
    StreamInfo,
)
from eventkeep.store.anchors import Anchor, AnchorKey
from eventkeep.store.base import projection_reached
from eventkeep.store.codec import Codec
from eventkeep.store.dcb import AppendCondition, Query, QueryResult
from eventkeep.store.events import Event, TypeRegistry
from eventkeep.store.hashing import VerifyReport
from eventkeep.store.types import POLL_INTERVALS, AppendItem
from eventkeep.store.validation import check_count, check_seconds

__all__ = ["DEFAULT_THREADS", "AsyncEventStore"]

T = TypeVar("T")

DEFAULT_THREADS = 32
"""Threads per store that run its calls; calls beyond that many at once queue for one."""

_numbers = itertools.count(1)


class AsyncEventStore(LifecycleMethods):
    """An event store for asyncio code: ``EventStore``'s methods, awaited.

    Open one with :func:`eventkeep.aio.open_store`, or wrap an open ``EventStore``
    (``AsyncEventStore(store)``; closing the async store closes it; it starts its threads, so
    construct it before the loop runs, or on a thread). ``threads``: how many calls run at
    once (see :data:`DEFAULT_THREADS`); on PostgreSQL the pool's ``pool_max_size`` bounds the
    database work running at once as well.
    """

    def __init__(self, store: EventStore, *, threads: int = DEFAULT_THREADS) -> None:
        if not isinstance(store, EventStore):
            raise ConfigurationError(f"AsyncEventStore wraps an EventStore, got {store!r:.80}")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ConfigurationError(f"threads must be an int >= 1, got {threads!r}")
        self.sync = store
        telemetry.prepare()  # not on the loop: the first span's import would block it ~15 ms
        number = next(_numbers)
        self._pool = StoreThreads(f"eventkeep-aio-{number}", threads)
        self._tx_threads = TransactionThreads(f"eventkeep-aio-{number}")
        self._tx: contextvars.ContextVar[AsyncTransaction | None] = contextvars.ContextVar(
            f"eventkeep_aio_tx_{number}", default=None
        )
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._wakes = 0
        self._closed = False
        self._batcher = Batcher(self._append_group)
        self._native = native.engine(store, self._in_pool)
        if self._native is None:
            store.on_append(self._wake_waiters)
        else:
            # Local appends wake waiters; other processes' are heard by the native LISTEN.
            EventStore.on_append(store, self._wake_waiters)

    # -- what the store is ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.sync.url

    @property
    def registry(self) -> TypeRegistry:
        return self.sync.registry

    @property
    def codec(self) -> Codec:
        return self.sync.codec

    def __repr__(self) -> str:
        return f"AsyncEventStore({self.url!r})"

    # -- running calls -------------------------------------------------------------------------

    def joined_transaction(self) -> AsyncTransaction | None:
        """The transaction of this store open in the calling task, if any (see the module)."""
        tx = self._tx.get()
        return tx if tx is not None and not tx.closed else None

    def _caller(self) -> Call[Any]:
        tx = self.joined_transaction()
        if tx is not None:
            return tx.call
        return self._in_pool

    async def _in_pool(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise ValidationError(f"{self.url}: the store is closed")
        return await self._pool.call(fn)

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        result: T = await self._caller()(functools.partial(fn, *args, **kwargs))
        return result

    def _natively(self) -> native.Engine | None:
        """The backend's native asyncio engine (PostgreSQL), when this call may use it: on its
        event loop, outside a transaction (a transaction's calls go to its thread), while the
        store is open."""
        engine = self._native
        if engine is None or self._closed or self.joined_transaction() is not None:
            return None  # a closed store's calls raise where they always did: on the threads
        return engine if engine.usable() else None

    async def _append_group(self, appends: list[StreamAppend]) -> list[AppendResult]:
        """The batcher's writes: natively, or the synchronous store's on a store thread."""
        engine = self._natively()
        if engine is not None:
            return await engine.append_many(appends)
        return await self._in_pool(functools.partial(self.sync.append_many, appends))

    # -- writing -------------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Iterable[AppendItem],
        expected_version: Expected = ANY,
        metadata: Mapping[str, Any] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        """See ``EventStore.append``. Appends that tasks send at the same time are written
        together (see :mod:`eventkeep.aio.batching`); each is still atomic on its own."""
        if condition is None and isinstance(events, list | tuple):
            appends = [StreamAppend(stream_id, events, expected_version, metadata)]
            if self.joined_transaction() is None:
                return (await self._batcher.append_many(appends))[0]
        engine = self._natively()
        if engine is not None:
            items = [StreamAppend(stream_id, events, expected_version, metadata)]  # type: ignore[arg-type]
            return (await whole(engine.append_many(items, condition)))[0]
        return await self._call(
            self.sync.append, stream_id, events, expected_version, metadata, condition=condition
        )

    async def append_many(
        self, appends: Iterable[StreamAppend], *, condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """See ``EventStore.append_many`` (written together with other tasks' appends, as
        ``append``)."""
        if condition is None and self.joined_transaction() is None and _batchable(appends):
            return await self._batcher.append_many(list(appends))
        engine = self._natively()
        if engine is not None:
            return await whole(engine.append_many(appends, condition))
        return await self._call(self.sync.append_many, appends, condition=condition)

    async def append_events(
        self,
        events: Iterable[AppendItem],
        *,
        condition: AppendCondition | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """See ``EventStore.append_events``."""
        engine = self._natively()
        if engine is not None:
            return await whole(engine.append_events(events, condition, metadata))
        return await self._call(
            self.sync.append_events, events, condition=condition, metadata=metadata
        )

    def transaction(self) -> TransactionBlock:
        """``async with store.transaction() as tx``: see :class:`AsyncTransaction`."""
        return TransactionBlock(self.sync, self._tx, self._tx_threads, self._pool)

    # -- reading -------------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
        archived: bool = False,
    ) -> Events:
        """See ``EventStore.read_stream``: ``async for recorded in store.read_stream(s)``.
        Bad arguments raise at once, before anything is read; a deleted stream's
        ``StreamDeletedError`` (which takes a look at the database) when the first event is
        awaited. ``archived``: archived history is read back too, on a store thread."""
        events = stream_read(
            self.sync.read_stream,
            stream_id,
            from_version,
            to_version,
            backwards=backwards,
            limit=limit,
            archived=archived,
        )
        return Events(events, self._caller())

    def read_all(
        self,
        after: int | None = None,
        limit: int | None = None,
        *,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
    ) -> Events:
        """See ``EventStore.read_all``."""
        events = self.sync.read_all(after, limit, types=types, stream_prefix=stream_prefix)
        return Events(events, self._caller())

    async def read(
        self, query: Query, *, after: int | None = None, limit: int | None = None
    ) -> QueryResult:
        """See ``EventStore.read``."""
        return await self._call(self.sync.read, query, after=after, limit=limit)

    async def stream_version(self, stream_id: str) -> int:
        engine = self._natively()
        if engine is not None:
            return await engine.stream_version(stream_id)
        return await self._call(self.sync.stream_version, stream_id)

    async def list_streams(self, prefix: str = "", *, limit: int | None = None) -> list[StreamInfo]:
        return await self._call(self.sync.list_streams, prefix, limit=limit)

    async def head_position(self) -> int:
        engine = self._natively()
        if engine is not None:
            return await engine.head_position()
        return await self._call(self.sync.head_position)

    async def stats(self) -> StoreStats:
        return await self._call(self.sync.stats)

    async def verify(
        self,
        *,
        deep: bool = True,
        anchor: Anchor | None = None,
        key: AnchorKey | None = None,
        trusted: Anchor | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> VerifyReport:
        """See ``EventStore.verify``. ``progress`` is called on the store thread that runs
        verify, not on the event loop: hand its figures over with
        ``loop.call_soon_threadsafe``."""
        return await self._call(
            self.sync.verify, deep=deep, anchor=anchor, key=key, trusted=trusted, progress=progress
        )

    async def anchor(
        self,
        key: AnchorKey,
        *,
        previous: Anchor | None = None,
        publish: Callable[[Anchor], object] | None = None,
    ) -> Anchor:
        """See ``EventStore.anchor`` (``publish`` is called on a store thread)."""
        return await self._call(self.sync.anchor, key, previous=previous, publish=publish)

    # -- snapshots and projections' bookkeeping --------------------------------------------------

    async def save_snapshot(
        self, stream_id: str, version: int, state_type: str, schema_version: int, data: bytes
    ) -> None:
        await self._call(
            self.sync.save_snapshot, stream_id, version, state_type, schema_version, data
        )

    async def load_snapshot(
        self, stream_id: str, max_version: int | None = None
    ) -> Snapshot | None:
        return await self._call(self.sync.load_snapshot, stream_id, max_version)

    async def delete_snapshots(self, stream_prefix: str = "") -> int:
        return await self._call(self.sync.delete_snapshots, stream_prefix)

    async def projection_state(self) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
        return await self._call(self.sync.projection_state)

    async def wait_for_projection(
        self, name: str, position: int, timeout: float | None = None
    ) -> bool:
        """See ``EventStore.wait_for_projection``: the task sleeps on the loop between looks
        at the projection's checkpoint (every few milliseconds at first, then every 50 ms)."""
        check_count(position, what="position")
        if timeout is not None:
            timeout = check_seconds(timeout, what="timeout (or None)")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_INTERVALS[0]
        while True:
            if projection_reached(name, position, *await self.projection_state()):
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            await asyncio.sleep(pause if deadline is None else min(pause, deadline - now))
            pause = min(pause * 2, 0.05)

    # -- waiting for new events ----------------------------------------------------------------

    async def wait_for_events(self, after: int, timeout: float | None = None) -> bool:
        """See ``EventStore.wait_for_events``: True once the log holds an event beyond
        ``after``, False after ``timeout`` seconds. The task sleeps on the event loop: appends
        through this store wake it at once, and so do other processes' appends on PostgreSQL
        (its listener); otherwise the head is looked at again after a pause that starts at a
        few milliseconds and doubles up to the store's ``poll_interval``."""
        check_count(after, what="after")
        if timeout is not None:
            timeout = check_seconds(timeout, what="timeout (or None)")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause, longest = POLL_INTERVALS[0], self.sync.poll_interval
        engine = self._natively()
        if engine is not None:
            engine.listen(self._wake_waiters)
        while True:
            wakes = self._wakes
            if await self.head_position() > after:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if self._wakes == wakes:  # else an append came in meanwhile: look again
                await self._sleep(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 2, longest)

    async def _sleep(self, seconds: float) -> None:
        """Sleep until an append may have happened, or ``seconds`` pass."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        waiter = (loop, woken)
        self._waiters.append(waiter)
        try:
            await asyncio.wait({woken}, timeout=seconds)
        finally:
            self._waiters.remove(waiter)
            woken.cancel()

    def _wake_waiters(self) -> None:
        """The sync store's append hook, on any thread: wake every waiting task."""
        self._wakes += 1
        for loop, woken in list(self._waiters):
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, woken)

    # -- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the store (and the ``EventStore`` it wraps); closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._native is not None and self._native.usable():
            await self._native.close()
        await self._pool.call(self.sync.close)
        self._pool.close()
        self._tx_threads.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _batchable(appends: Any) -> bool:
    """A non-empty list of StreamAppend whose events are lists: safe to send twice."""
    return (
        isinstance(appends, list)
        and bool(appends)
        and all(
            isinstance(item, StreamAppend) and isinstance(item.events, list | tuple)
            for item in appends
        )
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
