"""``AsyncRepository``: the domain layer's ``Repository``, awaited.

::

    accounts = AsyncRepository(store, Account)
    account = await accounts.load("alice")
    account.deposit(Decimal("5"))
    await accounts.save(account)
    await accounts.execute("alice", lambda a: a.withdraw(Decimal("2")))   # with retries

It is a :class:`eventkeep.Repository` whose calls run on the store's threads: aggregates and
deciders, snapshots and their policies, temporal loads (``at_version``, ``as_of``), history,
conflict rules and ``execute``'s retries are the synchronous code, unchanged. Commands passed to
``execute`` and ``handle`` are plain functions (a decider's ``decide`` is pure): they run on a
store thread, beside the load and save they sit between.

Given an :class:`~eventkeep.aio.AsyncTransaction`, it loads and saves in that transaction;
given the store, it joins the transaction open in the calling task, if any.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from eventkeep.aio.events import Call
from eventkeep.aio.store import AsyncEventStore
from eventkeep.aio.transaction import AsyncTransaction
from eventkeep.domain.aggregate import Aggregate
from eventkeep.domain.repository import Repository
from eventkeep.domain.snapshots import RebuildReport
from eventkeep.domain.temporal import HistoryEntry
from eventkeep.errors import ConfigurationError
from eventkeep.store import AppendResult

__all__ = ["AsyncRepository"]

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


class AsyncRepository(Generic[A]):
    """Loads and saves one aggregate type (a class or a ``Decider``) in an async store or an
    async transaction; the options are ``Repository``'s."""

    def __init__(
        self, store: AsyncEventStore | AsyncTransaction, aggregate: Any, **options: Any
    ) -> None:
        self._tx: AsyncTransaction | None = None
        self._store: AsyncEventStore | None = None
        writer: Any
        if isinstance(store, AsyncTransaction):
            self._tx = store
            writer = store.sync
        elif isinstance(store, AsyncEventStore):
            self._store = store
            writer = store.sync
        else:
            raise ConfigurationError(
                "AsyncRepository needs an AsyncEventStore or an open AsyncTransaction, "
                f"got {store!r:.80}"
            )
        self.sync: Repository[A] = Repository(writer, aggregate, **options)
        self.store = store

    @property
    def aggregate_type(self) -> type[A]:
        return self.sync.aggregate_type

    @property
    def category(self) -> str:
        return self.sync.category

    def _caller(self) -> Call[Any]:
        if self._tx is not None:
            return self._tx.call
        assert self._store is not None
        return self._store._caller()

    async def _run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        result: R = await self._caller()(functools.partial(fn, *args, **kwargs))
        return result

    def stream_id(self, id: str | uuid.UUID) -> str:
        """The stream that holds the aggregate ``id``."""
        return self.sync.stream_id(id)

    def create(self, id: str | uuid.UUID) -> A:
        """A new, empty aggregate (version 0): nothing is read."""
        return self.sync.create(id)

    async def ids(self) -> list[str]:
        return await self._run(self.sync.ids)

    async def exists(self, id: str | uuid.UUID) -> bool:
        return await self._run(self.sync.exists, id)

    async def load(
        self, id: str | uuid.UUID, *, at_version: int | None = None, as_of: datetime | None = None
    ) -> A:
        """See ``Repository.load``: now, at a version, or as of a time."""
        return await self._run(self.sync.load, id, at_version=at_version, as_of=as_of)

    async def get_or_create(self, id: str | uuid.UUID) -> A:
        return await self._run(self.sync.get_or_create, id)

    async def save(self, *aggregates: Aggregate) -> list[AppendResult]:
        """See ``Repository.save``."""
        return await self._run(self.sync.save, *aggregates)

    async def execute(
        self,
        id: str | uuid.UUID,
        command: Callable[[A], R],
        *,
        retries: int = 3,
        create: bool = False,
    ) -> R:
        """See ``Repository.execute``: load, ``command(aggregate)``, save, retried on a
        ``ConcurrencyError``; ``command`` is a plain function and may run more than once."""
        return await self._run(self.sync.execute, id, command, retries=retries, create=create)

    async def handle(
        self, id: str | uuid.UUID, command: Any, *, retries: int = 3, create: bool = True
    ) -> list[Any]:
        """See ``Repository.handle``: a decider's ``decide`` on ``command``, saved."""
        handle: Callable[..., list[Any]] = getattr(self.sync, "handle")  # noqa: B009
        return await self._run(handle, id, command, retries=retries, create=create)

    async def history(
        self, id: str | uuid.UUID, *, from_version: int = 1, to_version: int | None = None
    ) -> list[HistoryEntry[A]]:
        """See ``Repository.history``, as a list."""

        def entries() -> list[HistoryEntry[A]]:
            return list(self.sync.history(id, from_version=from_version, to_version=to_version))

        return await self._run(entries)

    async def rebuild_snapshots(self) -> RebuildReport:
        return await self._run(self.sync.rebuild_snapshots)

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"
