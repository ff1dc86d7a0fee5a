"""Live subscriptions as Server-Sent Events, fed by one tail of the log per server.

One task (the :class:`Broker`) follows the log's head and hands each new event to every
subscriber whose filter matches it, through a bounded queue per subscriber: a subscriber that
falls more than ``max_queue`` events behind is dropped (its queue emptied at once, so a slow
client cannot grow the server's memory), and told so in a final ``dropped`` event carrying the
position to resume after. A subscriber first catches up from the store, then takes the queue,
skipping what it has already sent: the SSE ``id`` is the event's position, so ``Last-Event-ID``
(or ``after``) resumes exactly, on this server or any other one of the same store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import msgspec

from eventkeep.aio import AsyncEventStore
from eventkeep.server.wire import event_json
from eventkeep.store.recorded import RecordedEvent

__all__ = ["Broker", "Subscriber", "sse_events"]

log = logging.getLogger("eventkeep.server.live")

Match = Callable[[RecordedEvent], bool]
CatchUp = Callable[[int], Awaitable[list[RecordedEvent]]]
"""Reads the next page of matching events after a position, from the store."""

_DROPPED = object()
_encode = msgspec.json.Encoder().encode


class Subscriber:
    """One live subscription's filter and queue. The broker queues one list of frames per page
    of the log it read (one wake-up per page, not per event); ``pending`` counts the events
    queued, and more than ``max_queue`` of them drops the subscriber."""

    def __init__(self, match: Match, max_queue: int) -> None:
        self.match = match
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.max_queue = max_queue
        self.pending = 0
        self.dropped = False

    def offer(self, frames: list[tuple[int, bytes]]) -> bool:
        """Queue a page's frames; False (and the subscriber dropped) when it is too far
        behind: its queue is emptied at once and ends with the drop."""
        if self.pending + len(frames) > self.max_queue:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.pending = 0
            self.queue.put_nowait(_DROPPED)
            return False
        self.pending += len(frames)
        self.queue.put_nowait(frames)
        return True

    def take(self, item: object) -> None:
        if isinstance(item, list):
            self.pending -= len(item)


class Broker:
    """Follows the log and fans new events out to the subscribers."""

    def __init__(
        self, store: AsyncEventStore, *, max_queue: int = 1000, interval: float = 0.02
    ) -> None:
        self.store = store
        self.max_queue = max_queue
        self.interval = interval
        self.subscribers: set[Subscriber] = set()
        self.position = 0
        self.dropped_total = 0
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def start(self) -> None:
        self.position = await self.store.head_position()
        self._task = asyncio.create_task(self._run(), name="eventkeep-live-broker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, match: Match) -> Subscriber:
        subscriber = Subscriber(match, self.max_queue)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def _run(self) -> None:
        while True:
            try:
                if not await self.store.wait_for_events(self.position, timeout=5.0):
                    continue
                page = await self.store.read_all(self.position, 500).list()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is unreachable for now: try again shortly
                log.warning("live: reading the log failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if page:
                self._fan_out(page)
                self.position = page[-1].position
                # Gather what comes in the next moment into one page: each subscriber then
                # gets one write per interval rather than one per append.
                await asyncio.sleep(self.interval)

    def _fan_out(self, page: list[RecordedEvent]) -> None:
        frames: dict[int, bytes] = {}  # each event encoded once, for all its subscribers
        for subscriber in list(self.subscribers):
            mine = []
            for event in page:
                if subscriber.match(event):
                    frame = frames.get(event.position)
                    if frame is None:
                        frame = frames[event.position] = _frame(event)
                    mine.append((event.position, frame))
            if mine and not subscriber.offer(mine):
                self.subscribers.discard(subscriber)
                self.dropped_total += 1


def _frame(event: RecordedEvent) -> bytes:
    return b"id: %d\nevent: event\ndata: %s\n\n" % (event.position, _encode(event_json(event)))


async def sse_events(
    broker: Broker,
    match: Match,
    catch_up: CatchUp,
    after: int,
    *,
    heartbeat: float = 15.0,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one subscriber: stored events after ``after``, then live ones.

    ``still_allowed`` is asked at each heartbeat: once it says no (the token was revoked), the
    stream ends with an ``event: unauthorized``."""
    subscriber = broker.subscribe(match)  # first: nothing appended from now on is missed
    last = after
    try:
        yield b"retry: 1000\n: connected\n\n"
        while True:  # catch up from the store
            page = await catch_up(last)
            for event in page:
                if event.position > last:
                    yield _frame(event)
                    last = event.position
            if not page or subscriber.dropped:
                break
        while True:
            try:
                items = [await asyncio.wait_for(subscriber.queue.get(), heartbeat)]
            except TimeoutError:
                if still_allowed is not None and not await still_allowed():
                    yield b"event: unauthorized\ndata: {}\n\n"
                    return
                yield b": heartbeat\n\n"
                continue
            while not subscriber.queue.empty():  # whatever else is queued: one write
                items.append(subscriber.queue.get_nowait())
            chunk: list[bytes] = []
            for item in items:
                subscriber.take(item)
                if item is _DROPPED:
                    body = _encode({"reason": "too far behind", "resume_after": last})
                    yield b"".join([*chunk, b"event: dropped\ndata: %s\n\n" % body])
                    return
                for position, frame in cast("list[tuple[int, bytes]]", item):
                    if position > last:
                        chunk.append(frame)
                        last = position
            if chunk:
                yield b"".join(chunk)
    finally:
        broker.unsubscribe(subscriber)
