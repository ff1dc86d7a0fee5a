"""``AsyncTransaction``: a store transaction for asyncio code.

::

    async with store.transaction() as tx:
        await tx.append("audit-alice", [BalanceChecked()])
        await tx.execute("UPDATE balances SET cents = cents + ? WHERE account = ?", (5, "alice"))
        await tx.save_checkpoint("balances", 42, expected=41)

It is the synchronous store's own transaction (``EventStore.transaction``), opened and run on
one thread of its own: every call of the block goes to that thread, in order, so a transaction
means on the async API exactly what it means on the synchronous one, on every backend.

Leaving the block with an exception rolls everything back; so does cancelling the task: a call
in progress finishes on the transaction's thread (it cannot be interrupted half-way), then the
transaction rolls back, and only then does the cancellation reach the task. The connection goes
back to its pool clean.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from eventkeep.aio._threads import StoreThreads, TransactionThread, TransactionThreads, finish
from eventkeep.aio.events import Events
from eventkeep.errors import ValidationError
from eventkeep.store import AppendResult, EventStore, Expected, Snapshot, StreamAppend, StreamInfo
from eventkeep.store.base import Transaction
from eventkeep.store.dcb import AppendCondition, Query, QueryResult
from eventkeep.store.events import Event
from eventkeep.store.types import AppendItem

__all__ = ["AsyncTransaction", "TransactionBlock"]

T = TypeVar("T")


class AsyncTransaction:
    """One open transaction of an :class:`~eventkeep.aio.AsyncEventStore`: the methods of
    ``Transaction``, awaited. Use it only inside its ``async with`` block."""

    def __init__(self, sync: Transaction, thread: TransactionThread) -> None:
        self.sync = sync
        self.closed = False
        self._thread = thread

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the transaction's thread (where the store joins it)."""
        if self.closed:
            raise ValidationError("this transaction has ended; open a new one")
        return await self._thread.call(fn)

    async def run_sync(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn(tx)`` with the synchronous transaction, on its thread: for code written for
        the synchronous API (``tx.connection``, a synchronous projection's handler)."""
        return await self.call(functools.partial(fn, self.sync))

    async def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await self.call(functools.partial(fn, *args, **kwargs))

    @property
    def supports_sql(self) -> bool:
        return self.sync.supports_sql

    # -- the store's writer interface, inside this transaction ---------------------------------

    async def append(
        self,
        stream_id: str,
        events: Iterable[AppendItem],
        expected_version: Expected | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        return await self._run(
            self.sync.append, stream_id, events, expected_version, metadata, condition=condition
        )

    async def append_many(
        self, appends: Iterable[StreamAppend], *, condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        return await self._run(self.sync.append_many, appends, condition=condition)

    async def append_events(
        self,
        events: Iterable[AppendItem],
        *,
        condition: AppendCondition | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        return await self._run(
            self.sync.append_events, events, condition=condition, metadata=metadata
        )

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Events:
        """Like ``AsyncEventStore.read_stream``, seeing this transaction's writes."""
        events = self.sync.store.read_stream(
            stream_id, from_version, to_version, backwards=backwards, limit=limit
        )
        return Events(events, self.call)

    def read_all(
        self,
        after: int | None = None,
        limit: int | None = None,
        *,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
    ) -> Events:
        """Like ``AsyncEventStore.read_all``, seeing this transaction's writes."""
        events = self.sync.store.read_all(after, limit, types=types, stream_prefix=stream_prefix)
        return Events(events, self.call)

    async def read(
        self, query: Query, *, after: int | None = None, limit: int | None = None
    ) -> QueryResult:
        return await self._run(self.sync.read, query, after=after, limit=limit)

    async def stream_version(self, stream_id: str) -> int:
        return await self._run(self.sync.stream_version, stream_id)

    async def list_streams(self, prefix: str = "", *, limit: int | None = None) -> list[StreamInfo]:
        return await self._run(self.sync.list_streams, prefix, limit=limit)

    async def head_position(self) -> int:
        return await self._run(self.sync.head_position)

    async def save_snapshot(
        self, stream_id: str, version: int, state_type: str, schema_version: int, data: bytes
    ) -> None:
        await self._run(
            self.sync.save_snapshot, stream_id, version, state_type, schema_version, data
        )

    async def load_snapshot(
        self, stream_id: str, max_version: int | None = None
    ) -> Snapshot | None:
        return await self._run(self.sync.load_snapshot, stream_id, max_version)

    async def delete_snapshots(self, stream_prefix: str = "") -> int:
        return await self._run(self.sync.delete_snapshots, stream_prefix)

    # -- checkpoints and projection records ----------------------------------------------------

    async def checkpoint(self, name: str) -> int | None:
        return await self._run(self.sync.checkpoint, name)

    async def save_checkpoint(self, name: str, position: int, *, expected: int | None) -> None:
        """See ``Transaction.save_checkpoint`` (a compare-and-set)."""
        await self._run(self.sync.save_checkpoint, name, position, expected=expected)

    async def delete_checkpoint(self, name: str) -> None:
        await self._run(self.sync.delete_checkpoint, name)

    async def checkpoints(self) -> dict[str, int]:
        return await self._run(self.sync.checkpoints)

    async def record(self, name: str) -> bytes | None:
        return await self._run(self.sync.record, name)

    async def save_record(self, name: str, data: bytes) -> None:
        await self._run(self.sync.save_record, name, data)

    async def delete_record(self, name: str) -> None:
        await self._run(self.sync.delete_record, name)

    async def records(self) -> list[tuple[str, bytes]]:
        return await self._run(self.sync.records)

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One SQL statement in this transaction (``?`` placeholders); returns its rows."""
        return await self._run(self.sync.execute, statement, params)


class TransactionBlock:
    """What ``AsyncEventStore.transaction()`` returns: ``async with`` it."""

    def __init__(
        self,
        store: EventStore,
        current: contextvars.ContextVar[AsyncTransaction | None],
        threads: TransactionThreads,
        starter: StoreThreads,
    ) -> None:
        self._store = store
        self._current = current
        self._threads = threads
        self._starter = starter
        self._tx: AsyncTransaction | None = None
        self._block: contextlib.AbstractContextManager[Transaction] | None = None
        self._token: contextvars.Token[AsyncTransaction | None] | None = None

    async def __aenter__(self) -> AsyncTransaction:
        open_tx = self._current.get()
        if open_tx is not None and not open_tx.closed:
            raise ValidationError(
                "a transaction of this store is already open on this thread (in this task): "
                "use it (tx) instead of opening another; store methods awaited in this task "
                "join it"
            )
        if self._tx is not None:
            raise ValidationError("this transaction block was entered already")
        thread = await self._threads.take(self._starter)
        block = self._store.transaction()
        entering = thread.submit(block.__enter__)
        try:
            sync = await finish(entering)
        except BaseException as exc:
            if entering.done() and entering.exception() is None:
                # Cancelled while it opened: it is open on the thread, so end it there.
                await finish(thread.submit(functools.partial(block.__exit__, type(exc), exc, None)))
            self._threads.give_back(thread)
            raise
        self._block = block
        self._tx = AsyncTransaction(sync, thread)
        self._token = self._current.set(self._tx)
        return self._tx

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tx, block, token = self._tx, self._block, self._token
        assert tx is not None
        assert block is not None
        assert token is not None
        tx.closed = True
        self._current.reset(token)
        try:
            # The store's transaction() never swallows an exception: it goes on from here.
            await finish(tx._thread.submit(functools.partial(block.__exit__, kind, exc, tb)))
        finally:
            self._threads.give_back(tx._thread)
