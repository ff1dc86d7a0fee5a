"""``Events``: what the async API's reads return, an async iterator of recorded events (and
``Rows``, what ``export`` returns: the same over exported rows)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

from eventkeep.store.hashing import ChainRow
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.types import PAGE_SIZE
from eventkeep.store.validation import (
    check_count,
    check_flag,
    check_optional_count,
    check_stream_id,
)

__all__ = ["Call", "Events", "Handed", "Rows", "stream_read"]

T = TypeVar("T")
R = TypeVar("R")
Call = Callable[[Callable[[], T]], Awaitable[T]]
"""Runs a function on a store thread (or a transaction's): ``await call(fn)``."""


class Handed(AsyncIterator[R], Generic[R]):
    """Items read a few pages at a time on a store thread, handed out one by one.

    The first hand-over from a store thread to the loop is one page of the backend's, the next
    ones two, then four (``HAND_OVER``): a hand-over costs little itself (25-30 µs of CPU for
    an empty call, ``StoreThreads.call``), but switching threads between two pieces of real
    work costs more (the work after it runs slower). Until recorded events were left out of
    the garbage collector's tracking (2026-11-30), events kept alive by the thousands cost
    collections, and 2 pages a hand-over measured best; now 4 pages measure as well as or
    better than 2, with less of the loop thread's CPU (``benchmarks/aio_gap.py --versus
    pages``, docs/aio.md). Reading the next hand-over while the caller goes through the
    current one was measured too (2026-11-30, ``git log``): no gain, since a caller that
    holds the GIL leaves the store thread nothing to do meanwhile.

    ``events``: the items, or a function returning them that is called on the store thread of
    the first hand-over (a read whose start does I/O, such as a stream's deletion check).
    """

    def __init__(
        self,
        events: Iterator[R] | Callable[[], Iterator[R]],
        call: Call[list[R]],
    ) -> None:
        self._events = events
        self._call = call
        self._rest: Iterator[R] = iter(())  # the current hand-over's items not yet handed out
        self._done = False
        self._size = FIRST_HAND_OVER

    async def _fetch(self) -> list[R]:
        # One item more than whole pages: to take it, the store thread reads the next page,
        # so a read that ends on a page's end (a 1,000-event stream) is over in one
        # hand-over, not two (the second one only finding the end). The first hand-over is
        # a page, the next ones twice as many pages each time, up to HAND_OVER.
        size = self._size
        self._size = min(2 * size - 1, HAND_OVER)
        events = self._events
        if isinstance(events, Iterator):
            page = await self._call(functools.partial(_take, events, size))
        else:
            page = await self._call(functools.partial(self._open, events, size))
        if len(page) < size:
            self._done = True
        return page

    def _open(self, opener: Callable[[], Iterator[R]], count: int) -> list[R]:
        """On the store thread: open the items, then take the first hand-over."""
        events = self._events = opener()
        return _take(events, count)

    def __aiter__(self) -> AsyncIterator[R]:
        """``async for``: an async generator over the hand-overs. One generator per read, not a
        coroutine per item (``__anext__``): about 0.1 µs an item on CPython 3.11 here, less
        than the coroutine's."""
        return self._each()

    async def _each(self) -> AsyncIterator[R]:
        while True:
            # The hand-over's iterator is where __anext__, pages() and list() go on from: a
            # plain for over it, nothing stored per item.
            for item in self._rest:
                yield item
            if not await self._turn_page():
                return

    async def __anext__(self) -> R:
        for item in self._rest:
            return item
        if not await self._turn_page():
            raise StopAsyncIteration
        return next(self._rest)

    async def pages(self) -> AsyncIterator[list[R]]:
        """The remaining events a hand-over at a time, as lists: the cheapest way through a
        long read (``async for`` costs CPython about 0.1 µs per item more)."""
        rest = list(self._rest)
        if rest:
            yield rest
        while page := await self._turn_page():
            self._rest = iter(())  # all of it handed out here
            yield page

    async def _turn_page(self) -> list[R]:
        """The next hand-over, its items in ``_rest`` too; empty at the end."""
        if self._done:
            return []
        page = await self._fetch()
        self._rest = iter(page)
        return page

    async def list(self) -> list[R]:
        """Every remaining event, in a list."""
        items: list[R] = []
        async for page in self.pages():
            items += page
        return items


class Events(Handed[RecordedEvent]):
    """Recorded events read a page at a time on a store thread, handed out one by one (see
    :class:`Handed`): what ``read_stream`` and ``read_all`` return."""


class Rows(Handed[ChainRow]):
    """Exported rows read a page at a time on a store thread, handed out one by one (see
    :class:`Handed`): what ``export`` returns."""


def stream_read(
    read_stream: Callable[..., Iterator[RecordedEvent]],
    stream_id: str,
    from_version: int,
    to_version: int | None,
    *,
    backwards: bool,
    limit: int | None,
    archived: bool,
) -> Callable[[], Iterator[RecordedEvent]]:
    """``read_stream``'s arguments checked at once (on the loop: no I/O), and the read itself
    deferred to the store thread of the first hand-over: its start looks at the database (a
    deleted stream's tombstone, archived history)."""
    check_stream_id(stream_id)
    check_count(from_version, what="from_version", minimum=1)
    check_optional_count(to_version, what="to_version", minimum=0)
    check_optional_count(limit, what="limit")
    check_flag(backwards, what="backwards")
    check_flag(archived, what="archived")
    return functools.partial(
        read_stream,
        stream_id,
        from_version,
        to_version,
        backwards=backwards,
        limit=limit,
        archived=archived,
    )


HAND_OVER = 4 * PAGE_SIZE + 1
"""The most items a hand-over from a store thread carries (see :class:`Handed` and
``Handed._fetch``): four pages since recorded events cost the garbage collector nothing
(2026-11-30; ``benchmarks/aio_gap.py --versus pages``)."""

FIRST_HAND_OVER = PAGE_SIZE + 1
"""The first hand-over of a read: one page, so that the first event comes as soon as the
synchronous API's would."""


def _take(events: Iterator[T], count: int) -> list[T]:
    return list(itertools.islice(events, count))
