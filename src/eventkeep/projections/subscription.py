"""Subscriptions: the global log from a checkpoint, caught up and then followed live.

::

    subscription = Subscription(store, after=checkpoint, types=[Deposited])
    for batch in subscription.batches(stop=stop_event):
        handle(batch.events)
        save(batch.position)

``query=`` (a DCB :class:`~eventkeep.store.dcb.Query`) delivers only the events matching it,
read through ``store.read(query)`` (the tag and type indexes), instead of ``types=`` and
``stream_prefix=``.

There is no separate "live mode" to switch to, and so no hand-over to get wrong: catching up
and following live are the same loop, reading ``read_all`` pages after the last delivered
position and, when a page comes back short, waiting for the log's head to move
(``EventStore.wait_for_events``: an in-process wake-up plus adaptive polling on SQLite,
NOTIFY plus bounded polling on PostgreSQL). Positions may have gaps; nothing here assumes
they do not. A consumer that falls behind is only ever delayed: it reads from its own position,
whatever the head does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, NamedTuple

from eventkeep.errors import ValidationError
from eventkeep.store import EventStore
from eventkeep.store.dcb import Query, check_query
from eventkeep.store.events import Event
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.validation import check_count

__all__ = ["END", "START", "Batch", "Subscription"]

START = 0
"""Subscribe from the beginning of the log."""

END: Literal["end"] = "end"
"""Subscribe from the current head: only events appended from now on."""

DEFAULT_BATCH_SIZE = 500
IDLE_WAIT = 0.25
"""Longest single wait for new events, so that a stop request is noticed promptly."""


class Batch(NamedTuple):
    """Events delivered together, and the position to save as the checkpoint afterwards.

    ``position`` is at least the last event's position; with filters it can be further on
    (events in between did not match). ``caught_up`` is True when the batch reached the head
    of the log as it was when it was read.
    """

    events: list[RecordedEvent]
    position: int
    caught_up: bool


class Subscription:
    """Delivers the global log after a position, in batches, then follows it live."""

    def __init__(
        self,
        store: EventStore,
        *,
        after: int | Literal["end"] | None = None,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query: Query | None = None,
    ) -> None:
        self.store = store
        if after == END:
            self.position = store.head_position()
        else:
            self.position = check_count(0 if after is None else after, what="after")
        self.types = None if types is None else store._type_names(types)
        if stream_prefix is not None and not isinstance(stream_prefix, str):
            raise ValidationError(f"stream_prefix must be a str, got {stream_prefix!r}")
        self.stream_prefix = stream_prefix or None
        self.batch_size = check_count(batch_size, what="batch_size", minimum=1)
        if query is not None:
            check_query(query)
            if types is not None or self.stream_prefix is not None:
                raise ValidationError(
                    "a subscription takes a query, or types and stream_prefix, not both"
                )
        self.query = query

    def fetch(self, after: int | None = None) -> Batch:
        """One batch after ``after`` (default: the subscription's position); never waits."""
        position = self.position if after is None else after
        if self.query is not None:
            # read() gives the same guarantee: every matching event not returned is after head.
            found = self.store.read(self.query, after=position, limit=self.batch_size)
            full = len(found) == self.batch_size
            return Batch(found.events, found.head, not full)
        head = self.store.head_position()
        events = list(
            self.store.read_all(
                position, self.batch_size, types=self.types, stream_prefix=self.stream_prefix
            )
        )
        return self.batch_of(position, head, events)

    def batch_of(self, position: int, head: int, events: list[RecordedEvent]) -> Batch:
        """The batch that a read of the log after ``position`` makes (``head``: the head
        position read before it); the asyncio API's subscription reads, and builds it here."""
        if len(events) == self.batch_size:
            return Batch(events, events[-1].position, False)
        # A short page: every matching event committed up to ``head`` (read before the page)
        # is in it, so the non-matching events up to there need not be read again.
        last = events[-1].position if events else position
        return Batch(events, max(position, head, last), True)

    def batches(
        self,
        stop: threading.Event | Callable[[], bool] | None = None,
        *,
        idle_timeout: float | None = None,
    ) -> Iterator[Batch]:
        """Non-empty batches, forever (until ``stop`` is set, or ``idle_timeout`` seconds pass
        with nothing new). The subscription's position advances as each batch is taken."""
        stopped = _stop_check(stop)
        while not stopped():
            batch = self.fetch()
            if batch.events:
                yield batch
                self.position = batch.position  # the consumer asked for more: it is done
                continue
            self.position = batch.position
            waited = 0.0
            while not stopped():
                pause = IDLE_WAIT if idle_timeout is None else min(IDLE_WAIT, idle_timeout - waited)
                if pause <= 0:
                    return
                if self.store.wait_for_events(self.position, pause):
                    break
                waited += pause

    def __iter__(self) -> Iterator[RecordedEvent]:
        """Every event, one at a time, forever (use ``batches`` to stop or time out)."""
        for batch in self.batches():
            yield from batch.events


def _stop_check(stop: threading.Event | Callable[[], bool] | None) -> Callable[[], bool]:
    if stop is None:
        return lambda: False
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop
