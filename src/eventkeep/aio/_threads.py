"""Where the async API's blocking work runs: a pool of store threads, and one thread per open
transaction.

The event loop never runs a store's I/O. A call goes to the store's thread pool (any thread
will do: the backends keep their connections per thread or in a pool), except inside an open
transaction, whose calls all go to the one thread that opened it (a backend transaction belongs
to its thread). Transaction threads are kept for reuse, so opening one costs a queue hand-off,
not a thread start.

Cancelling a task that awaits a call does not stop the call: it runs to its end on its thread
(an append is whole or absent, never half-written), and only its result is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["StoreThreads", "TransactionThread", "TransactionThreads", "finish", "whole"]

T = TypeVar("T")

_Job = tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None


def _run(job: tuple[Callable[[], Any], concurrent.futures.Future[Any]]) -> None:
    fn, future = job
    if not future.set_running_or_notify_cancel():
        return  # cancelled before it started
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


class StoreThreads:
    """The store's threads, all started at once (starting a thread while the loop waits for
    it would block the loop). A call goes to the thread that became idle last: a few threads
    do most of the work, so what a backend keeps per thread (SQLite's read connection and its
    page cache) stays warm. Calls beyond ``count`` at once wait in order."""

    def __init__(self, name: str, count: int) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self._backlog: collections.deque[_Job] = collections.deque()
        for number in range(1, count + 1):
            jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
            self._idle.append(jobs)
            threading.Thread(
                target=self._serve, args=(jobs,), name=f"{name}-{number}", daemon=True
            ).start()
        self._all = list(self._idle)

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._idle:
                self._idle.pop().put((fn, future))
            else:
                self._backlog.append((fn, future))
        return future

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def close(self) -> None:
        """Stop the threads once the calls already submitted are done."""
        for jobs in self._all:
            jobs.put(None)

    def _serve(self, jobs: queue.SimpleQueue[_Job]) -> None:
        job = jobs.get()
        while job is not None:
            _run(job)
            with self._lock:
                if self._backlog:
                    job = self._backlog.popleft()
                    continue
                self._idle.append(jobs)
            job = jobs.get()


class TransactionThread(StoreThreads):
    """One thread that runs the calls of one transaction at a time, in order."""

    def __init__(self, name: str) -> None:
        super().__init__(name, 1)

    def stop(self) -> None:
        self.close()


class TransactionThreads:
    """Idle transaction threads, kept for the next transaction."""

    def __init__(self, name: str, keep: int = 8) -> None:
        self._name = name
        self._keep = keep
        self._idle: list[TransactionThread] = []
        self._lock = threading.Lock()
        self._count = 0

    async def take(self, starter: StoreThreads) -> TransactionThread:
        """An idle thread, or a new one (started by one of ``starter``'s threads, not by the
        event loop)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self._count += 1
            number = self._count
        name = f"{self._name}-tx-{number}"
        starting = starter.submit(lambda: TransactionThread(name))
        try:
            return await finish(starting)
        except asyncio.CancelledError:
            if starting.exception() is None:
                self.give_back(starting.result())  # started all the same: keep it
            raise

    def give_back(self, thread: TransactionThread) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(thread)
                return
        thread.stop()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for thread in idle:
            thread.stop()


async def finish(future: concurrent.futures.Future[T]) -> T:
    """Await ``future`` to its end even if the awaiting task is cancelled meanwhile (then the
    cancellation is raised once the future is done): for work that must not be abandoned
    half-way, such as ending a transaction."""
    waiting = asyncio.wrap_future(future)
    cancelled: asyncio.CancelledError | None = None
    while not waiting.done():
        try:
            await asyncio.wait({waiting})  # unlike await, wait() never cancels what it waits for
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    return waiting.result()


async def whole(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` (native database I/O on the loop, such as an append) to its end even if the
    awaiting task is cancelled meanwhile, as a call on a store thread is: an append is stored
    whole or not at all and its connection goes back to the pool clean; then the cancellation
    is raised."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    return task.result()
