"""``Events``: what the async API's reads return, an async iterator of recorded events."""

from __future__ import annotations

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
    many pages as the one before, up to ``MOST_PAGES``. (Reading the next hand-over while the
    caller goes through the current one was tried: on CPython the two threads then contend
    for the GIL, and it cost CPU without saving time.)
    """

    def __init__(self, events: Iterator[RecordedEvent], call: Call[list[RecordedEvent]]) -> None:
        self._events = events
        self._call = call
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
        page, next = self._page, self._next
        if next < len(page):  # the common case, kept short: it runs once per event
            self._next = next + 1
            return page[next]
        if not await self._turn_page():
            raise StopAsyncIteration
        self._next = 1
        return self._page[0]

    async def pages(self) -> AsyncIterator[list[RecordedEvent]]:
        """The remaining events a hand-over at a time, as lists: the cheapest way through a
        long read (``async for`` costs CPython about half a microsecond per item)."""
        if self._next < len(self._page):
            rest = self._page[self._next :]
            self._next = len(self._page)
            yield rest
        while await self._turn_page():
            self._next = len(self._page)
            yield self._page

    async def _turn_page(self) -> bool:
        """Load the next hand-over into ``_page``; False at the end."""
        if self._done:
            return False
        self._page = await self._fetch()
        self._next = 0
        return bool(self._page)

    async def list(self) -> list[RecordedEvent]:
        """Every remaining event, in a list."""
        return [event async for page in self.pages() for event in page]


def _take(events: Iterator[RecordedEvent], count: int) -> list[RecordedEvent]:
    return list(itertools.islice(events, count))
