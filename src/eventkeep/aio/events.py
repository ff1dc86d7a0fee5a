"""``Events``: what the async API's reads return, an async iterator of recorded events."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Self, TypeVar

from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.types import PAGE_SIZE

__all__ = ["MOST_PAGES", "Call", "Events"]

MOST_PAGES = 16
"""The most backend pages one hand-over from a store thread carries."""

T = TypeVar("T")
Call = Callable[[Callable[[], T]], Awaitable[T]]
"""Runs a function on a store thread (or a transaction's): ``await call(fn)``."""


class Events(AsyncIterator[RecordedEvent]):
    """Recorded events read a page at a time on a store thread, handed out one by one.

    Each hand-over from a store thread to the loop costs a thread switch, which a busy machine
    makes slow: the first hand-over is one page of the backend's, and each next one twice as
    many pages as the one before, up to ``MOST_PAGES``. With ``ahead`` (reads outside a
    transaction), the next hand-over is read while the caller goes through the current one.
    """

    def __init__(
        self, events: Iterator[RecordedEvent], call: Call[list[RecordedEvent]], *, ahead: bool
    ) -> None:
        self._events = events
        self._call = call
        self._ahead = ahead
        self._coming: asyncio.Task[list[RecordedEvent]] | None = None
        self._page: list[RecordedEvent] = []
        self._next = 0
        self._done = False
        self._size = PAGE_SIZE  # events in the next hand-over

    async def _fetch(self) -> list[RecordedEvent]:
        size = self._size
        self._size = min(size * 2, MOST_PAGES * PAGE_SIZE)
        page = await self._call(functools.partial(_take, self._events, size))
        if len(page) < size:
            self._done = True
        return page

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordedEvent:
        if self._next >= len(self._page):
            coming, self._coming = self._coming, None
            if coming is None:
                if self._done:
                    raise StopAsyncIteration
                self._page = await self._fetch()
            else:
                self._page = await coming
            self._next = 0
            if not self._page:
                raise StopAsyncIteration
            if self._ahead and not self._done:
                self._coming = asyncio.ensure_future(self._fetch())
        event = self._page[self._next]
        self._next += 1
        return event

    async def list(self) -> list[RecordedEvent]:
        """Every remaining event, in a list."""
        return [event async for event in self]


def _take(events: Iterator[RecordedEvent], count: int) -> list[RecordedEvent]:
    return list(itertools.islice(events, count))
