"""``open_store`` for the asyncio API."""

from __future__ import annotations

import asyncio
from typing import Any

from eventkeep.aio.store import DEFAULT_THREADS, AsyncEventStore
from eventkeep.store.events import TypeRegistry
from eventkeep.urls import open_store as open_sync_store

__all__ = ["open_store"]


async def open_store(
    url: str,
    *,
    registry: TypeRegistry | None = None,
    threads: int = DEFAULT_THREADS,
    **options: Any,
) -> AsyncEventStore:
    """Open the event store at ``url`` (the URLs and options of :func:`eventkeep.open_store`)
    for asyncio code; opening (connecting, migrating) runs on a thread, not on the loop.
    ``threads``: how many calls run at once (see ``AsyncEventStore``)."""
    return await asyncio.to_thread(_open, url, registry, threads, options)


def _open(
    url: str, registry: TypeRegistry | None, threads: int, options: dict[str, Any]
) -> AsyncEventStore:
    """On a thread: the store, and the async store's threads, started."""
    store = open_sync_store(url, registry=registry, **options)
    try:
        return AsyncEventStore(store, threads=threads)
    except BaseException:
        store.close()
        raise
