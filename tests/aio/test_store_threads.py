"""The store threads' hand-over (``StoreThreads.call``): an outcome goes straight to the
awaiting task's future; cancelled calls, errors and closed loops are handled; an idle thread
keeps nothing alive."""

from __future__ import annotations

import asyncio
import threading
import weakref

import pytest

from eventkeep.aio._threads import StoreThreads


class Page:
    """Stands for a hand-over's events (weak references allowed)."""


def test_a_call_cancelled_before_a_thread_takes_it_never_runs() -> None:
    threads = StoreThreads("test-threads", 1)
    release = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        busy = asyncio.ensure_future(threads.call(lambda: release.wait(10)))
        waiting = asyncio.ensure_future(threads.call(lambda: ran.append("cancelled call")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        assert await busy is True
        assert await threads.call(lambda: 7) == 7  # the thread went on, in order

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert ran == []


def test_a_call_cancelled_while_it_runs_ends_on_its_thread_and_its_result_is_dropped() -> None:
    threads = StoreThreads("test-threads", 1)
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    def work() -> int:
        started.set()
        release.wait(10)
        ended.set()
        return 1

    async def main() -> None:
        task = asyncio.ensure_future(threads.call(work))
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert await threads.call(lambda: 2) == 2  # after work, on the one thread

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert ended.is_set()


def test_errors_reach_the_caller_and_a_stop_iteration_as_a_runtime_error() -> None:
    threads = StoreThreads("test-threads", 2)

    def stop() -> None:
        raise StopIteration

    def fail() -> None:
        raise ValueError("bad input")

    async def main() -> None:
        with pytest.raises(ValueError, match="bad input"):
            await threads.call(fail)
        with pytest.raises(RuntimeError, match="StopIteration"):
            await threads.call(stop)
        assert await threads.call(lambda: "still serving") == "still serving"

    try:
        asyncio.run(main())
    finally:
        threads.close()


def test_an_idle_store_thread_keeps_no_result_alive() -> None:
    threads = StoreThreads("test-threads", 1)

    async def main() -> weakref.ref[Page]:
        page = await threads.call(Page)
        seen = weakref.ref(page)
        del page
        for _ in range(1000):  # the thread drops its references right after the hand-over
            if seen() is None:
                break
            await asyncio.sleep(0.001)
        return seen

    try:
        assert asyncio.run(main())() is None
    finally:
        threads.close()


def test_an_outcome_for_a_closed_loop_is_dropped_and_the_thread_goes_on() -> None:
    threads = StoreThreads("test-threads", 1)
    started, release, delivered = threading.Event(), threading.Event(), threading.Event()
    running: list[asyncio.Future[str]] = []

    def work() -> str:
        started.set()
        release.wait(10)
        return "too late"

    async def leave_a_call_running() -> None:
        running.append(asyncio.ensure_future(threads.call(work)))
        await asyncio.to_thread(started.wait, 10)
        # asyncio.run cancels the task and closes the loop while work still runs

    try:
        asyncio.run(leave_a_call_running())
        assert running[0].cancelled()
        release.set()
        threads.submit(delivered.set).result(timeout=10)  # the thread survived the delivery
        assert delivered.is_set()
        assert asyncio.run(threads.call(lambda: 3)) == 3
    finally:
        threads.close()
