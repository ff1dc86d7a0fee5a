"""``Events``: what the async API's reads return, an async iterator of recorded events."""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Self, TypeVar

from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.types import PAGE_SIZE

__all__ = ["Call", "Events"]

T = TypeVar("T")
Call = Callable[[Callable[[], T]], Awaitable[T]]
"""Runs a function on a store thread (or a transaction's): ``await call(fn)``."""


class Events(AsyncIterator[RecordedEvent]):
    """Recorded events read a page at a time on a store thread, handed out one by one."""

    def __init__(self, events: Iterator[RecordedEvent], call: Call[list[RecordedEvent]]) -> None:
        self._events = events
        self._call = call
        self._page: list[RecordedEvent] = []
        self._next = 0
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordedEvent:
        if self._next >= len(self._page):
            if self._done:
                raise StopAsyncIteration
            self._page = await self._call(functools.partial(_take, self._events, PAGE_SIZE))
            self._next = 0
            self._done = len(self._page) < PAGE_SIZE
            if not self._page:
                raise StopAsyncIteration
        event = self._page[self._next]
        self._next += 1
        return event

    async def list(self) -> list[RecordedEvent]:
        """Every remaining event, in a list."""
        return [event async for event in self]


def _take(events: Iterator[RecordedEvent], count: int) -> list[RecordedEvent]:
    return list(itertools.islice(events, count))
