"""Waking readers: LISTEN/NOTIFY for low latency, with a bounded poll so nothing can stall them.

The sequencer sends ``NOTIFY eventkeep_<schema>, '<head position>'`` in the transaction that
numbers new events, so a notification arrives only once those events are visible. A waiter
LISTENs on its own connection (one per thread, outside the pool), then checks the head, then
sleeps on the socket for at most ``poll_interval`` before checking again: a lost notification, or
a listening connection that died, costs at most one poll interval, never a stalled reader.
Between waits the connection UNLISTENs, so notifications never pile up for an idle reader.
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
    """Per-thread LISTEN connections of one store, and the wait loop."""

    def __init__(self, db: Database, poll_interval: float) -> None:
        self._db = db
        self._poll_interval = poll_interval
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[psycopg.Connection[Any]] = []
        self._closed = False
        channel = quoted(db.channel)
        self._listen = sql.LISTEN.format(channel=channel)
        self._unlisten = sql.UNLISTEN.format(channel=channel)

    def wait(self, after: int, timeout: float | None, head: Callable[[], int]) -> bool:
        """True as soon as the head position is beyond ``after``; False after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = self._start()
        try:
            while True:
                if head() > after:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                pause = (
                    self._poll_interval
                    if remaining is None
                    else min(remaining, self._poll_interval)
                )
                if conn is None:
                    time.sleep(pause)
                    conn = self._start()
                elif self._notified(conn, after, pause):
                    return True
        finally:
            if conn is not None:
                self._stop(conn)

    def _notified(self, conn: psycopg.Connection[Any], after: int, pause: float) -> bool:
        """Sleep until a notification (True if it announces a head beyond ``after``)."""
        try:
            for note in conn.notifies(timeout=pause, stop_after=1):
                with contextlib.suppress(ValueError):
                    return int(note.payload) > after
        except psycopg.Error:
            self._discard(conn)
            time.sleep(pause)
        return False

    def _start(self) -> psycopg.Connection[Any] | None:
        """This thread's connection, LISTENing; None if it cannot be had now (poll instead)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        try:
            if conn is None or conn.closed:
                conn = self._db.connect()
                with self._lock:
                    if self._closed:
                        conn.close()
                        return None
                    self._all.append(conn)
                self._local.conn = conn
            conn.execute(self._listen)
            return conn
        except Exception:
            if conn is not None:
                self._discard(conn)
            return None

    def _stop(self, conn: psycopg.Connection[Any]) -> None:
        try:
            conn.execute(self._unlisten)
            for _ in conn.notifies(timeout=0):  # drop what arrived meanwhile
                pass
        except psycopg.Error:
            self._discard(conn)

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(Exception):
            conn.close()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
