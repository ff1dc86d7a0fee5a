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
import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["StoreThreads", "TransactionThread", "TransactionThreads", "finish", "whole"]

T = TypeVar("T")

_Job = Callable[[], None] | None
"""What a store thread runs: a call and the delivery of its outcome; None stops the thread."""


def _run(fn: Callable[[], Any], future: concurrent.futures.Future[Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return  # cancelled before it started
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _run_for(
    fn: Callable[[], Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> None:
    """Run ``fn`` and hand its outcome to ``future`` on ``loop``: one ``call_soon_threadsafe``,
    no ``concurrent.futures.Future`` in between (see ``StoreThreads.call``)."""
    if future.cancelled():  # a flag read across threads: at worst the call runs, and its
        return  # outcome is dropped, as for a task cancelled while it runs
    try:
        result = fn()
    except BaseException as exc:
        if isinstance(exc, StopIteration):  # a future cannot hold one
            exc = RuntimeError(f"a store call raised StopIteration: {exc!r}")
        _deliver(loop, future.set_exception, future, exc)
    else:
        _deliver(loop, future.set_result, future, result)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    setter: Callable[[Any], None],
    future: asyncio.Future[Any],
    outcome: Any,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits the outcome
        loop.call_soon_threadsafe(_settle, setter, future, outcome)


def _settle(setter: Callable[[Any], None], future: asyncio.Future[Any], outcome: Any) -> None:
    if not future.done():  # else cancelled meanwhile: the outcome is dropped
        setter(outcome)


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
        self._put(functools.partial(_run, fn, future))
        return future

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a store thread, awaited. Its outcome comes back with one
        ``call_soon_threadsafe`` straight into an asyncio future: 25-30 µs of CPU a call and
        back here, against 45-50 µs through ``submit`` and ``asyncio.wrap_future`` (a
        ``concurrent.futures.Future``, its condition variable, and callbacks both ways); a
        read hands over once every two pages (``benchmarks/aio_gap.py``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(functools.partial(_run_for, fn, loop, future))
        return await future

    def _put(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle.pop().put(job)
            else:
                self._backlog.append(job)

    def close(self) -> None:
        """Stop the threads once the calls already submitted are done."""
        for jobs in self._all:
            jobs.put(None)

    def _serve(self, jobs: queue.SimpleQueue[_Job]) -> None:
        job = jobs.get()
        while job is not None:
            job()
            job = None  # an idle thread keeps nothing alive (a page of events, a result)
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
