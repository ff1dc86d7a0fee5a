"""On PostgreSQL the asyncio API does its appends, the head and waiting on psycopg's
``AsyncConnection``, running the same append plan as the synchronous store (``plans.py``);
its reads run the synchronous store's on a store thread."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import psycopg
import pytest
from aio_support import deposits, pool_is_idle
from test_event_loop import LoopWatch

import eventkeep
import eventkeep.aio
from eventkeep import AppendCondition, NewEvent, Query, QueryItem, RawEvent
from eventkeep.backends.postgres import plans
from pg_fixtures import PgServer, fresh_store_url, require_driver

require_driver()

QUERY = Query([QueryItem(types=["Claimed"], tags=["username:ann"])])


@pytest.fixture
def url(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    return fresh_store_url(request, pg_server)


@pytest.fixture
def plan_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every first read of an append plan (``plans._read``), whoever drives it: whether it is
    made under the sequencer's lock (by ``plans._append_under_lock``)."""
    original_read, original_locked = plans._read, plans._append_under_lock
    seen: list[bool] = []
    locked: list[bool] = []

    def read(*args: Any, **kwargs: Any) -> Any:
        seen.append(bool(locked))
        return (yield from original_read(*args, **kwargs))

    def under_lock(*args: Any, **kwargs: Any) -> Any:
        locked.append(True)
        try:
            return (yield from original_locked(*args, **kwargs))
        finally:
            locked.pop()

    monkeypatch.setattr(plans, "_read", read)
    monkeypatch.setattr(plans, "_append_under_lock", under_lock)
    return seen


def sync_requests(store: eventkeep.aio.AsyncEventStore) -> int:
    """Connections the synchronous store's pool has handed out."""
    return int(store.sync._db._pool.get_stats().get("requests_num", 0))  # type: ignore[attr-defined]


def test_appends_and_the_head_run_natively_on_the_async_pool_and_reads_on_the_store_threads(
    url: str, plan_reads: list[bool]
) -> None:
    """Reads are the synchronous store's, a page per hand-over from a store thread: a page
    costs psycopg's AsyncConnection more CPU than the synchronous connection (docs/aio.md)."""

    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            assert store._native is not None
            before = sync_requests(store)
            await store.append("a", deposits(3), expected_version=0)
            await asyncio.gather(*(store.append(f"s-{n}", deposits(2)) for n in range(20)))
            claim = NewEvent(RawEvent("Claimed", {}), tags=["username:ann"])
            await store.append_events([claim], condition=AppendCondition(QUERY, 0))
            assert await store.stream_version("a") == 3
            assert await store.head_position() == 44
            assert sync_requests(store) == before  # nothing went through the store threads
            assert store._native.db.pool.get_stats()["requests_num"] > 0  # type: ignore[attr-defined]
            assert [e.version for e in await store.read_stream("a").list()] == [1, 2, 3]
            assert len(await store.read_all().list()) == 44
            assert [e.type for e in (await store.read(QUERY)).events] == ["Claimed"]
            assert sync_requests(store) > before  # the reads did
            assert pool_is_idle(store)

    asyncio.run(main())
    assert plan_reads  # the shared plan...
    assert not any(plan_reads)  # ...its optimistic path


def test_the_async_append_takes_the_locked_path_of_the_same_plan_when_a_condition_fails(
    url: str, plan_reads: list[bool]
) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            for _ in range(2):
                claim = NewEvent(RawEvent("Claimed", {}), tags=["username:ann"])
                append = store.append_events([claim], condition=AppendCondition(QUERY, 0))
                if not plan_reads:
                    await append
                    continue
                with pytest.raises(eventkeep.AppendConditionError):
                    await append
            assert await store.head_position() == 1

    asyncio.run(main())
    # Read unlocked and unmatched: written (the clock learned). Then sent at once (no read),
    # matched by the insert statement itself: checked again under the lock, refused.
    assert plan_reads == [False, True]


def test_many_waiting_tasks_share_one_listening_connection_and_wake_on_a_notify(
    url: str, pg_server: PgServer
) -> None:
    """Another store (as another process would) appends: only its NOTIFY can wake the tasks,
    since the poll interval is ten minutes."""

    def listening() -> int:
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s",
                (f"LISTEN%{url.rsplit('=', 1)[1]}%",),
            ).fetchone()
        return int(row[0]) if row else 0

    async def main() -> None:
        async with await eventkeep.aio.open_store(url, poll_interval=600.0) as store:
            # The first native call of the store is a wait: it starts listening too.
            waiting = [
                asyncio.create_task(store.wait_for_events(0, timeout=120)) for _ in range(20)
            ]
            for _ in range(200):
                await asyncio.sleep(0.01)
                if await asyncio.to_thread(listening) == 1:
                    break
            assert await asyncio.to_thread(listening) == 1
            assert not any(task.done() for task in waiting)
            with eventkeep.open_store(url) as other:
                await asyncio.to_thread(other.append, "elsewhere", deposits(1))
            assert await asyncio.wait_for(asyncio.gather(*waiting), timeout=60) == [True] * 20
        assert await asyncio.to_thread(listening) == 0  # closed with the store

    asyncio.run(main())


def test_a_cancelled_conditional_append_is_stored_whole_or_not_at_all(url: str) -> None:
    """Appends with a condition are not batched: they run natively in a task of their own,
    which a cancellation waits for, as a call on a store thread finishes."""

    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            events = [NewEvent(e, tags=["username:ann"]) for e in deposits(2000)]
            task = asyncio.create_task(
                store.append_events(events, condition=AppendCondition(QUERY, 0))
            )
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await store.head_position() in (0, 2000)
            assert pool_is_idle(store)
            assert (await store.verify()).ok

    asyncio.run(main())


def test_a_store_used_from_a_second_event_loop_goes_through_its_threads(url: str) -> None:
    store = asyncio.run(eventkeep.aio.open_store(url))

    async def first() -> int:
        await store.append("a", deposits(1))
        return await store.head_position()

    async def second() -> int:
        await store.append("a", deposits(1))
        head = await store.head_position()
        await store.close()
        return head

    assert asyncio.run(first()) == 1
    assert asyncio.run(second()) == 2  # the first loop is closed: the native pool is not used


def test_pooled_connections_killed_while_idle_are_replaced_and_errors_are_eventkeep_errors(
    url: str, pg_server: PgServer
) -> None:
    app = f"ek-native-{url.rsplit('=', 1)[1]}"

    def terminate() -> int:
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (app,),
            ).fetchall()
        return len(rows)

    async def main() -> None:
        async with await eventkeep.aio.open_store(url, application_name=app) as store:
            await store.append("a", deposits(1))
            assert await asyncio.to_thread(terminate) >= 1
            await asyncio.sleep(0.1)
            # The check on checkout finds the dead connection and the pool hands out another.
            await store.append("a", deposits(1))
            assert len(await store.read_stream("a").list()) == 2
            with psycopg.connect(pg_server.url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {url.rsplit('=', 1)[1]} CASCADE")
            with pytest.raises(eventkeep.EventkeepError) as caught:
                await store.append("a", deposits(1))
            assert not isinstance(caught.value, psycopg.Error)
            assert isinstance(caught.value.__cause__, psycopg.Error)  # translated, chained
            with pytest.raises(eventkeep.EventkeepError):
                await store.read_all().list()

    asyncio.run(main())


def test_native_appends_and_long_reads_never_work_on_the_loop_for_5_ms(url: str) -> None:
    """The loop thread's own CPU time in every callback (``LoopWatch``): appends at and above
    the size sent from a store thread, and a read of all of them (``4,102 + 2 * HEAVY_ROWS``
    events) handed over up to four pages at a time."""
    sizes = (1, plans.HEAVY_ROWS, plans.HEAVY_ROWS + 1, 2000)
    appends = [eventkeep.StreamAppend(f"s-{n}", deposits(n)) for n in sizes]
    many = [eventkeep.StreamAppend(f"m-{n}", deposits(1)) for n in range(2000)]  # made off the loop

    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            for append in appends:
                await store.append(append.stream_id, append.events)
            await store.append_many(many)
            assert len(await store.read_all().list()) == sum(sizes) + len(many)
            assert len([e async for e in store.read_stream("s-2000")]) == 2000

    gc.collect()
    gc.freeze()
    try:
        with LoopWatch() as watch:
            asyncio.run(main())
    finally:
        gc.unfreeze()
    assert watch.most_cpu < 0.005, (watch.busiest, watch.most_cpu)


def test_a_read_abandoned_half_way_leaves_no_connection_and_no_error_behind(url: str) -> None:
    """A caller that stops reading half-way leaves no connection out of its pool (the read's
    generator, on a store thread, holds none between hand-overs), and a store closed
    meanwhile closes cleanly (warnings are errors here)."""

    async def main(close_at_once: bool) -> None:
        store = await eventkeep.aio.open_store(url)
        try:
            if await store.stream_version("a") == 0:
                await store.append("a", deposits(3000))
            async for event in store.read_stream("a"):
                if event.version == 1500:  # in the second hand-over
                    break
            if not close_at_once:
                for _ in range(500):
                    if pool_is_idle(store):
                        break
                    await asyncio.sleep(0.01)
                assert pool_is_idle(store)
        finally:
            await store.close()

    asyncio.run(main(close_at_once=False))
    asyncio.run(main(close_at_once=True))
