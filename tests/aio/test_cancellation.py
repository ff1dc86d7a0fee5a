"""Cancelling a task in the middle of an append or a transaction leaves no half-written state,
and no lock or connection behind."""

from __future__ import annotations

import asyncio

import pytest
from aio_support import deposits, pool_is_idle, url

import eventkeep.aio

__all__ = ["url"]  # the fixture


async def wait_until_idle(store: eventkeep.aio.AsyncEventStore) -> None:
    """Until no call of the store runs on its threads (a cancelled call may still)."""
    threads = store._pool
    for _ in range(3000):
        if len(threads._idle) == len(threads._all) and pool_is_idle(store):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the store's calls did not end within 30 s")


def test_a_cancelled_append_is_stored_whole_or_not_at_all(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            task = asyncio.create_task(store.append("big", deposits(2000), expected_version=0))
            await asyncio.sleep(0)  # the append is on its way to a store thread
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Whenever it is looked at, the stream holds all of the append or none of it;
            # a started append finishes on its thread, and its connection goes back.
            for _ in range(50):
                assert await store.stream_version("big") in (0, 2000)
                await asyncio.sleep(0.01)
            await wait_until_idle(store)
            version = await store.stream_version("big")
            assert version in (0, 2000)
            stored = await store.read_stream("big").list()
            assert len(stored) == version
            result = await store.append("big", deposits(1), expected_version=version)
            assert result.version == version + 1
            assert pool_is_idle(store)

    asyncio.run(main())


def test_a_transaction_cancelled_while_it_waits_is_rolled_back(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            inside = asyncio.Event()

            async def write() -> None:
                async with store.transaction() as tx:
                    await tx.append("tx", deposits(3), expected_version=0)
                    await tx.save_checkpoint("reader", 3, expected=None)
                    inside.set()
                    await asyncio.sleep(60)

            task = asyncio.create_task(write())
            await inside.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await store.stream_version("tx") == 0
            assert await store.head_position() == 0
            assert pool_is_idle(store)
            # No lock is left behind: the next transaction commits at once.
            async with store.transaction() as tx:
                assert await tx.checkpoint("reader") is None
                await tx.append("tx", deposits(1), expected_version=0)
            assert await store.stream_version("tx") == 1

    asyncio.run(main())


def test_a_transaction_cancelled_during_a_call_rolls_back_after_the_call(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            started = asyncio.Event()

            async def write() -> None:
                async with store.transaction() as tx:
                    await tx.append("first", deposits(1), expected_version=0)
                    started.set()
                    await tx.append("second", deposits(3000), expected_version=0)

            task = asyncio.create_task(write())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The cancellation reached the task only after the rollback: nothing is stored.
            assert await store.head_position() == 0
            assert await store.stream_version("second") == 0
            assert pool_is_idle(store)
            assert store.joined_transaction() is None
            await store.append("first", deposits(1), expected_version=0)

    asyncio.run(main())


def test_store_calls_in_a_transaction_task_join_it_and_others_do_not(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            async with store.transaction() as tx:
                await store.append("joined", deposits(2), expected_version=0)
                assert await store.stream_version("joined") == 2
                assert [e.version async for e in store.read_stream("joined")] == [1, 2]
                assert await tx.head_position() == 2
                with pytest.raises(eventkeep.ValidationError, match="already open"):
                    async with store.transaction():
                        pass
            assert await store.stream_version("joined") == 2

            class Undo(Exception):
                pass

            async def undone() -> None:
                async with store.transaction():
                    await store.append("undone", deposits(1), expected_version=0)
                    raise Undo

            with pytest.raises(Undo):
                await undone()
            assert await store.stream_version("undone") == 0

    asyncio.run(main())
