"""Reads of the primary under group commit: a reader never returns an event that a server crash
could take back.

With group commit (``group_commit=True``, migration ``0017_group_commit.sql``) an append's own
transaction commits asynchronously: its events are visible as soon as its commit record is in
the WAL buffers, and the writer is told they are stored only after a second, synchronous commit
has flushed the WAL past them. A reader of the primary could see them in between. If the server
then crashed, they would be gone, their positions would be given to other events, and a
projection that had checkpointed one of them would skip its replacement.

So before a read of the primary returns an event (or the head position), it makes sure that
event's commit is flushed. Positions follow WAL order (the sequencer's lock is held to the
commit record), so one number says what is known flushed: :class:`Durable` keeps the highest
position this store object knows flushed. A page whose highest position is at or below it is
returned as it is, at no cost: that is every page of a catch-up behind the head, after its
first. Otherwise one more statement (``sql.FLUSH_WAL_HEAD``, on the same connection) flushes
the WAL up to its insert position, which is past every commit the page's snapshot saw, unless
the WAL is flushed that far already (no write then, only the round trip), and returns the head
position of its own snapshot: everything up to it is flushed too, so the pages up to there
cost nothing more. An append of this store object (acknowledged after its flush) raises the
position to its own events.

Not bounded, because a crash cannot make them wrong in a way that skips events: a stream's
version and the list of streams (a decision made on them is an append, later in the WAL than
what it read, so lost with it), and reads inside a store transaction (its commit is later in
the WAL than everything it read; what it read and wrote is kept or lost together). Reads of a
streaming replica need no bound: a primary sends only WAL it has flushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from eventkeep.backends.postgres import sql

__all__ = ["Durable"]


class Durable:
    """The highest position this store object knows flushed on the primary (group commit)."""

    __slots__ = ("enabled", "position")

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.position = 0
        """Every event at or below this position has a flushed commit (or was removed)."""

    def needs(self, top: int) -> bool:
        """Whether an event at position ``top``, just read, must be flushed before it is
        returned."""
        return self.enabled and top > self.position

    def learned(self, *positions: int) -> None:
        """Events up to each of ``positions`` are known flushed. (Threads race here; a lost
        update only leaves the position lower, which costs a statement, never a wrong read.)"""
        self.position = max(self.position, *positions)

    def page(self, conn: psycopg.Connection[Any], rows: Sequence[Any]) -> None:
        """Before ``rows`` (of ``sql.RECORD_COLUMNS`` or ``EXPORT_ROWS``: the position third,
        in position or version order), read on ``conn`` (the primary, outside a transaction),
        are returned."""
        if rows:
            self.head(conn, max(int(rows[0][2]), int(rows[-1][2])))

    def head(self, conn: psycopg.Connection[Any], top: int) -> None:
        """Before position ``top`` (a head position, or a page's highest), read on ``conn``,
        is returned."""
        if self.needs(top):
            self.flush(conn, top)

    def flush(self, conn: psycopg.Connection[Any], top: int = 0) -> int:
        """Flush the WAL past every commit made so far (on ``conn``, the primary, outside a
        transaction); returns the head position, every position up to which is now flushed."""
        row = conn.execute(sql.FLUSH_WAL_HEAD).fetchone()
        head = int(row[1]) if row else 0
        self.learned(top, head)
        return head
