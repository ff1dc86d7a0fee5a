"""An async subscription delivers every event once, in order, in batches of at most its size,
whether it catches up (several batches per hand-over) or follows the log live."""

from __future__ import annotations

import asyncio

from aio_support import deposits, url

import eventkeep.aio
from eventkeep import StreamAppend
from eventkeep.aio import AsyncSubscription

__all__ = ["url"]  # the fixture


def test_catching_up_then_following_delivers_each_event_once_in_order(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            await store.append_many([StreamAppend(f"s-{n}", deposits(10)) for n in range(250)])
            subscription = AsyncSubscription(store, batch_size=100)
            seen: list[int] = []
            stop = asyncio.Event()
            async for batch in subscription.batches(stop):
                assert 0 < len(batch.events) <= 100
                seen.extend(e.position for e in batch.events)
                if len(seen) == 1200:
                    break  # stop half-way
            # As with the synchronous subscription, a batch counts as handled once the
            # consumer asks for the next one: the last one taken comes again.
            assert subscription.position == 1100
            del seen[1100:]
            async for batch in subscription.batches(stop):
                seen.extend(e.position for e in batch.events)
                if len(seen) == 2500:
                    await store.append("late", deposits(3))
                if len(seen) == 2503:
                    stop.set()
            assert seen == list(range(1, 2504))

    asyncio.run(main())
