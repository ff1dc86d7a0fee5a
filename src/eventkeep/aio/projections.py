"""Subscriptions and the projection runner for asyncio code.

- :class:`AsyncSubscription`: ``eventkeep.projections.Subscription``'s batches, awaited; an idle
  subscription sleeps on the event loop (``AsyncEventStore.wait_for_events``) and wakes on an
  append through the store or, on PostgreSQL, another process's NOTIFY.
- :class:`AsyncRunner`: the synchronous ``Runner`` (leases, checkpoints, retries, parking, the
  exactly-once transactions) run on a thread of its own; ``await runner.run(...)`` returns when
  it does, and cancelling the awaiting task stops it cleanly (the current batch finishes, the
  leases are released) before the cancellation is raised.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Literal

from eventkeep.aio._threads import TransactionThread, finish
from eventkeep.aio.store import AsyncEventStore
from eventkeep.errors import ConfigurationError
from eventkeep.projections.projection import Projection
from eventkeep.projections.runner import Runner
from eventkeep.projections.subscription import (
    DEFAULT_BATCH_SIZE,
    END,
    IDLE_WAIT,
    Batch,
    Subscription,
)
from eventkeep.store.dcb import Query
from eventkeep.store.events import Event
from eventkeep.store.recorded import RecordedEvent

__all__ = ["MOST_BATCHES", "AsyncRunner", "AsyncSubscription"]

MOST_BATCHES = 4
"""The most batches one hand-over from a store thread carries while a subscription catches up
(the first hand-over carries one, then two, then four).

Until recorded events were left out of the garbage collector's tracking (a ``msgspec.Struct``
with ``gc=False``, 2026-11-30), each batch held alive across a hand-over was about as many new
tracked objects as CPython lets pass before a young collection, so two or four batches a
hand-over cost collections (on SQLite 7 and 11 ms of a 55 ms catch-up of 20,000 events,
against 0.15 ms at one batch) and one batch was kept. A catch-up now collects never, at one
batch or at sixteen (``benchmarks/aio_floor.py``), and fewer hand-overs are fewer switches
between the store thread and the loop (``benchmarks/aio_gap.py --versus batches``)."""


class AsyncSubscription:
    """The global log after a position (or a query's matches), in batches, then live."""

    def __init__(
        self,
        store: AsyncEventStore,
        *,
        after: int | Literal["end"] | None = None,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query: Query | None = None,
    ) -> None:
        if not isinstance(store, AsyncEventStore):
            raise ConfigurationError(f"AsyncSubscription needs an AsyncEventStore, got {store!r}")
        self.store = store
        self._from_end = after == END
        self.sync = Subscription(
            store.sync,
            after=None if self._from_end else after,
            types=types,
            stream_prefix=stream_prefix,
            batch_size=batch_size,
            query=query,
        )

    @property
    def position(self) -> int:
        return self.sync.position

    async def _start(self) -> None:
        if self._from_end:
            self.sync.position = await self.store.head_position()
            self._from_end = False

    async def fetch(self, after: int | None = None) -> Batch:
        """One batch after ``after`` (default: the subscription's position); never waits."""
        await self._start()
        return await self.store._call(self.sync.fetch, after)

    async def batches(
        self, stop: asyncio.Event | None = None, *, idle_timeout: float | None = None
    ) -> AsyncIterator[Batch]:
        """Non-empty batches until ``stop`` is set (or ``idle_timeout`` seconds pass with
        nothing new); the position advances as each batch is taken. While it is behind, one
        hand-over from the store thread carries up to ``MOST_BATCHES`` batches (twice as many
        each time; see there why one)."""
        coming: list[Batch] = []
        ahead = 1
        while stop is None or not stop.is_set():
            if not coming:
                await self._start()
                coming = await self.store._call(_run_of, self.sync, self.sync.position, ahead)
                ahead = min(ahead * 2, MOST_BATCHES)
            batch = coming.pop(0)
            if batch.events:
                yield batch
                self.sync.position = batch.position
                continue
            ahead = 1
            self.sync.position = batch.position
            waited = 0.0
            while stop is None or not stop.is_set():
                pause = IDLE_WAIT if idle_timeout is None else min(IDLE_WAIT, idle_timeout - waited)
                if pause <= 0:
                    return
                if await self.store.wait_for_events(self.sync.position, pause):
                    break
                waited += pause

    async def __aiter__(self) -> AsyncIterator[RecordedEvent]:
        """Every event, one at a time, forever."""
        async for batch in self.batches():
            for event in batch.events:
                yield event


def _run_of(subscription: Subscription, position: int, count: int) -> list[Batch]:
    """Up to ``count`` batches in a row from ``position``, ending early at the log's end."""
    batches: list[Batch] = []
    for _ in range(count):
        batch = subscription.fetch(position)
        batches.append(batch)
        if batch.caught_up or not batch.events:
            break
        position = batch.position
    return batches


class AsyncRunner:
    """Runs projections against an async store: the synchronous ``Runner`` (same options) on a
    thread of its own. Projections are the synchronous ones: their handlers run in the store's
    transactions, on that thread."""

    def __init__(
        self, store: AsyncEventStore, projections: Sequence[Projection], **options: Any
    ) -> None:
        if not isinstance(store, AsyncEventStore):
            raise ConfigurationError(f"AsyncRunner needs an AsyncEventStore, got {store!r}")
        self.store = store
        self.sync = Runner(store.sync, projections, **options)

    def stop(self) -> None:
        """Finish the current batch, then return from ``run``."""
        self.sync.stop()

    def failed(self) -> list[str]:
        return self.sync.failed()

    def caught_up(self, *, or_failed: bool = False) -> bool:
        return self.sync.caught_up(or_failed=or_failed)

    async def run(
        self,
        *,
        until: Callable[[], bool] | None = None,
        until_caught_up: bool = False,
        stop_on_failure: bool = False,
        timeout: float | None = None,
    ) -> bool:
        """See ``Runner.run``; cancelling the task stops the runner first (see the module)."""
        thread = await self.store._pool.call(lambda: TransactionThread("eventkeep-aio-runner"))
        try:
            work = functools.partial(
                self.sync.run,
                until=until,
                until_caught_up=until_caught_up,
                stop_on_failure=stop_on_failure,
                timeout=timeout,
            )
            future = thread.submit(work)
            try:
                return await asyncio.shield(asyncio.wrap_future(future))
            except asyncio.CancelledError:
                self.sync.stop()
                await finish(future)
                raise
        finally:
            thread.stop()
