"""Waking readers: LISTEN/NOTIFY for low latency, with a bounded poll so nothing can stall them.

The sequencer sends ``NOTIFY eventkeep_<schema>, '<head position>'`` in the transaction that
numbers new events, so a notification arrives only once those events are visible. One listener
per store: a daemon thread, started by the first wait, LISTENs on one connection of its own
(outside the pool) and wakes every waiting thread when a notification announces a new head.
However many threads wait, the store holds one listening connection. A waiter also checks the
head itself at least every ``poll_interval``: a lost notification, or a listening connection
that died (the thread reconnects), costs at most one poll interval, never a stalled reader.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from eventkeep.backends.postgres import sql
from eventkeep.backends.postgres.connection import Database, quoted

__all__ = ["Listener"]


class Listener:
    """The store's one LISTEN connection, its thread, and the wait loop of every reader."""

    def __init__(self, db: Database, poll_interval: float) -> None:
        self._db = db
        self._poll_interval = poll_interval
        self._wake = threading.Condition()
        self._announced = 0  # the highest head position a notification announced
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._listen = sql.LISTEN.format(channel=quoted(db.channel))
        self._hooks: list[Callable[[], object]] = []

    @property
    def poll_interval(self) -> float:
        return self._poll_interval

    def add_hook(self, hook: Callable[[], object]) -> None:
        """Call ``hook()`` on the listener's thread whenever a notification announces a new
        head (the asyncio API's waiters); starts listening."""
        self._hooks.append(hook)
        self._start()

    def wait(self, after: int, timeout: float | None, head: Callable[[], int]) -> bool:
        """True as soon as the head position is beyond ``after``; False after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._start()
        while True:
            if head() > after:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            pause = (
                self._poll_interval if remaining is None else min(remaining, self._poll_interval)
            )
            with self._wake:
                if self._announced <= after:
                    self._wake.wait(pause)
                if self._announced > after:
                    return True

    @property
    def listening(self) -> bool:
        """Whether the listener thread runs (for tests and diagnostics)."""
        return self._thread is not None and self._thread.is_alive()

    def _start(self) -> None:
        with self._wake:
            if self._thread is not None or self._closing.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name=f"eventkeep-listen-{self._db.schema}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        """Listen until the store closes; reconnect after a pause when the connection dies."""
        while not self._closing.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._db.connect()
                conn.execute(self._listen)
                while not self._closing.is_set():
                    for note in conn.notifies(timeout=self._poll_interval):
                        self._announce(note.payload)
            except Exception:
                pass
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._closing.wait(self._poll_interval)

    def _announce(self, payload: str) -> None:
        try:
            position = int(payload)
        except ValueError:
            return
        with self._wake:
            if position <= self._announced:
                return
            self._announced = position
            self._wake.notify_all()
        for hook in self._hooks:
            hook()

    def close(self) -> None:
        """Stop listening: the thread closes its connection within one poll interval (it is not
        waited for, so closing a store never blocks on it)."""
        self._closing.set()
