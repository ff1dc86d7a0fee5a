"""Backends whose I/O the asyncio API does natively, on the event loop (PostgreSQL, through
psycopg's ``AsyncConnection``): appends, the head, a stream's version, and waiting (LISTEN).
Everything else of such a store (reads included: see ``backends/postgres/aio_store.py``), and
every call of the other backends, runs the synchronous store's method on a store thread.

Only a backend already imported can be native: ``import eventkeep.aio`` imports no driver.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from eventkeep.store import AppendResult, EventStore, StreamAppend
from eventkeep.store.dcb import AppendCondition

__all__ = ["Engine", "engine"]


class Engine(Protocol):
    """What a native engine does: ``EventStore``'s I/O methods, awaited (arguments already
    checked where the docstrings say so)."""

    def usable(self) -> bool: ...

    async def append_many(
        self, appends: Iterable[StreamAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]: ...

    async def append_events(
        self, events: Iterable[Any], condition: AppendCondition | None, metadata: Any
    ) -> AppendResult: ...

    async def stream_version(self, stream_id: str) -> int: ...

    async def head_position(self) -> int: ...

    def listen(self, hook: Callable[[], object]) -> None: ...

    async def close(self) -> None: ...


def engine(
    store: EventStore, offload: Callable[[Callable[[], Any]], Awaitable[Any]]
) -> Engine | None:
    """The native engine of ``store``, or None (its calls then run on store threads)."""
    module = sys.modules.get("eventkeep.backends.postgres.store")
    if module is None or not isinstance(store, module.PostgresStore):
        return None
    if store.read_url is not None:
        # Reads from a replica follow the store's read-your-writes floor, which the
        # synchronous store keeps (backends/postgres/replica.py): its calls run on threads.
        return None
    from eventkeep.backends.postgres.aio_store import NativePostgres

    return NativePostgres(store, offload)
