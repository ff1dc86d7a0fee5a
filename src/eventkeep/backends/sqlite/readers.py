"""The SQLite store's reader connections: one per thread that reads (read-only, ``PRAGMA
query_only``), closed when the thread ends, all of them by ``close``; at most ``MAX_READERS``
are kept. See the connection notes of :mod:`eventkeep.backends.sqlite.store`."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_READERS", "Readers"]

MAX_READERS = 32
"""Reader connections a store keeps open at most (one per thread that reads); a thread beyond
that opens a connection for each read and closes it afterwards."""


class _Reader:
    """Holds a thread's reader connection: when the thread ends, this goes and closes it."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class Readers:
    """Reader connections, one per thread (at most ``limit``), every one closed by ``close``.

    A thread's connection lives in a thread-local holder: when the thread ends, the holder goes
    and a finalizer closes the connection. ``close`` closes those still open. Nothing here keeps
    the store alive: a store dropped without ``close`` takes its connections with it.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], limit: int) -> None:
        self._connect = connect
        self._limit = limit
        self._local = threading.local()
        # Reentrant: a thread's end may close its reader from within this lock (a finalizer).
        self._lock = threading.RLock()
        self._open: dict[int, tuple[sqlite3.Connection, weakref.finalize[Any, Any]]] = {}
        self._closed = False

    def get(self) -> tuple[sqlite3.Connection, bool]:
        """This thread's reader connection, and True when it is one for this read only (the
        caller closes it): the limit is reached."""
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is not None:
            return reader.conn, False
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        conn = self._connect()
        try:
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        with self._lock:
            if self._closed:
                conn.close()
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if len(self._open) >= self._limit:
                return conn, True
            reader = _Reader(conn)
            key = id(reader)
            ended = weakref.finalize(reader, _reader_ended, weakref.ref(self), key, conn)
            self._open[key] = (conn, ended)
        self._local.reader = reader
        return conn, False

    def forget(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            readers = list(self._open.values())
            self._open.clear()
            self._local = threading.local()  # drops the holders of threads still running
        for conn, ended in readers:
            ended.detach()
            conn.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)


def _reader_ended(readers: weakref.ref[Readers], key: int, conn: sqlite3.Connection) -> None:
    """Close the reader connection of a thread that has ended (or of a dropped store)."""
    owner = readers()
    if owner is not None:
        owner.forget(key)
    conn.close()
