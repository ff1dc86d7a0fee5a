"""Leases of the store's pooled connections (``Database.connection()``), and the slot: one
pooled connection kept out of the pool for the next lease that finds it free.

A lease from psycopg_pool (``getconn`` and ``putconn``: its lock, its queue, its statistics and
its log calls) cost 20-35 µs of client CPU here, 5-8% of a one-event append and of a command
loop's load and save (two stores on one server, one leasing from the pool, one from a slot, in
turns of 150 operations: 1,949 against 2,072 create + saves per second, 1,245 against 1,337
commands). Most store objects are used by one thread at a time; the slot serves that thread
without the pool, and any thread that finds it in use leases from the pool as before.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from eventkeep.errors import EventkeepError

__all__ = ["SLOT_TURNOVER", "Lease", "Slot", "check_on_checkout"]

SLOT_TURNOVER = 60.0
"""Seconds a connection serves in the slot before it goes back to the pool (which replaces one
older than ``connection.MAX_LIFETIME``) and the slot takes another."""

_DRIVER_ERRORS = (PoolTimeout, PoolClosed, psycopg.Error)
_OPEN = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)
_IDLE = psycopg.pq.TransactionStatus.IDLE


class Slot:
    """One connection of the pool, kept out of it between leases.

    It counts toward ``pool_max_size``: the slot and the pool together never hold more. A lease
    tries the slot first, without waiting (:class:`Lease`); a thread that finds it in use
    leases from the pool. Back from a lease, the connection stays in the slot unless a thread
    is waiting for a connection from the pool (it goes to that thread: no thread waits while a
    connection sits idle in the slot), it served ``SLOT_TURNOVER`` seconds, it is not idle
    (broken, or a transaction could not be rolled back), or the store is closing. Before each
    lease it is checked as the pool checks its own at checkout (:func:`check_on_checkout`):
    one that died while idle goes back to the pool, which replaces it, and the lease takes
    another, so no caller sees an error for a connection that died unused.

    Whether a thread waits is the slot's own count (``wanting``), not the pool's queue: a
    thread that finds the slot in use counts itself under ``guard`` (trying the slot once
    more there) before it asks the pool, and a lease on the slot ends under ``guard`` too. So
    either that thread takes the slot, or the lease ending sees it counted and gives the
    connection to the pool, where the thread gets it: no thread can fall between the two.
    """

    __slots__ = ("closed", "conn", "guard", "lock", "since", "wanting")

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held by the lease on the slot
        self.guard = threading.Lock()  # a lease's end, and a thread counting itself in wanting
        self.wanting = 0  # threads that found the slot in use, until the pool gives them one
        self.conn: psycopg.Connection[Any] | None = None
        self.since = 0.0
        self.closed = False

    def take(self, pool: ConnectionPool[Any]) -> psycopg.Connection[Any]:
        """The slot's connection, checked, or a new one from the pool (``lock`` held)."""
        conn = self.conn
        if conn is not None:
            try:
                check_on_checkout(conn)
            except psycopg.Error:  # it died while idle: the pool replaces it
                self.conn = None
                pool.putconn(conn)
            else:
                return conn
        fresh: psycopg.Connection[Any] = pool.getconn()
        self.conn, self.since = fresh, time.monotonic()
        return fresh

    def keep(self, pool: ConnectionPool[Any], conn: psycopg.Connection[Any]) -> None:
        """A lease is over (``lock`` and ``guard`` held): keep ``conn``, or give it back to
        the pool."""
        if (
            self.wanting
            or self.closed
            or conn.pgconn.transaction_status != _IDLE
            or time.monotonic() - self.since > SLOT_TURNOVER
        ):
            self.conn = None
            pool.putconn(conn)

    def close(self, pool: ConnectionPool[Any]) -> None:
        """Give the connection back before the pool closes; a lease holding it now gives it
        back when it ends."""
        with self.guard:  # a lease ends under it too: either it sees closed, or this its end
            self.closed = True
            if self.lock.acquire(blocking=False):
                try:
                    conn, self.conn = self.conn, None
                    if conn is not None:
                        pool.putconn(conn)
                finally:
                    self.lock.release()


class Pooled(Protocol):
    """What a lease needs of its ``connection.Database``."""

    _pool: ConnectionPool[Any]
    _slot: Slot

    def translated(self, exc: PoolTimeout | PoolClosed | psycopg.Error) -> EventkeepError: ...


class Lease:
    """``Database.connection()``: a connection for one ``with`` block, from the slot when it
    is free, else from the pool.

    What ``translate()`` around ``pool.connection()`` did, in one object instead of two
    generator context managers (27 -> 10 µs of CPU per checkout here, on every operation): on
    the way out, a transaction an error left open is rolled back, the connection goes back to
    the slot or the pool, and a driver or pool exception becomes its eventkeep error.
    """

    __slots__ = ("_conn", "_db", "_slot")

    def __init__(self, db: Pooled) -> None:
        self._db = db
        self._conn: psycopg.Connection[Any] | None = None
        self._slot: Slot | None = None

    def __enter__(self) -> psycopg.Connection[Any]:
        db = self._db
        slot = db._slot
        try:
            if slot.lock.acquire(blocking=False) or _want(slot):
                try:
                    conn = slot.take(db._pool)
                except BaseException:
                    slot.lock.release()
                    raise
                self._slot = slot
            else:
                try:
                    conn = db._pool.getconn()
                finally:
                    with slot.guard:
                        slot.wanting -= 1
        except _DRIVER_ERRORS as exc:
            raise db.translated(exc) from exc
        self._conn = conn
        return conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        conn, self._conn = self._conn, None
        slot, self._slot = self._slot, None
        assert conn is not None
        pool = self._db._pool
        try:
            if exc is not None and conn.pgconn.transaction_status in _OPEN:
                with contextlib.suppress(Exception):
                    conn.rollback()
        finally:
            if slot is None:
                pool.putconn(conn)
            else:
                with slot.guard:
                    try:
                        slot.keep(pool, conn)
                    finally:
                        slot.lock.release()
        if isinstance(exc, _DRIVER_ERRORS):
            raise self._db.translated(exc) from exc


def _want(slot: Slot) -> bool:
    """The slot was in use: under its guard, take it if it is free by now (True), else count
    this thread among those waiting for the pool (False), so the slot's lease, ending, gives
    its connection to the pool."""
    with slot.guard:
        if slot.lock.acquire(blocking=False):
            return True
        slot.wanting += 1
        return False


def check_on_checkout(conn: psycopg.Connection[Any]) -> None:
    """The pool's health check when a connection is handed out, without a round trip for a
    healthy one (a ``SELECT``-style ping per checkout costs 35-40% of short reads here).

    An idle pooled connection has nothing to read: the server says nothing unless asked. If
    its socket is readable (or gone), the server has spoken: most often a FATAL error and
    EOF (a restart, ``pg_terminate_backend``, an idle-session timeout, a proxy closing it).
    Only then is the connection pinged; a failed ping raises, and the pool discards it and
    hands out another, so the caller never sees a connection that died while idle.
    """
    if conn.closed:
        raise psycopg.OperationalError("the pooled connection is closed")
    fd = conn.pgconn.socket
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        conn.execute("")  # raises if the connection is dead
