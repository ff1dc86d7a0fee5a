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
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["TransactionThread", "TransactionThreads", "finish"]

T = TypeVar("T")

_Job = tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None


class TransactionThread:
    """One thread that runs the calls of one transaction at a time, in order."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return future

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)


class TransactionThreads:
    """Idle transaction threads, kept for the next transaction."""

    def __init__(self, name: str, keep: int = 8) -> None:
        self._name = name
        self._keep = keep
        self._idle: list[TransactionThread] = []
        self._lock = threading.Lock()
        self._count = 0

    def take(self) -> TransactionThread:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self._count += 1
            number = self._count
        return TransactionThread(f"{self._name}-tx-{number}")

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
