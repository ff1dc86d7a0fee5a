"""Rewriting a stored event behind a store's back, to prove that ``verify`` notices.

The contract suite calls :meth:`StoreContract.tamper`, which uses :func:`tamper_event`. It knows
the memory and SQLite backends; any other backend overrides ``tamper`` in its contract subclass
(e.g. disable the append-only trigger, UPDATE the row, restore the trigger).
"""

from __future__ import annotations

import sqlite3

from eventkeep.backends.memory import MemoryStore
from eventkeep.backends.sqlite import SQLiteStore
from eventkeep.store import EventStore
from eventkeep.store.migrations import load_migrations

__all__ = [
    "TAMPERED_DATA",
    "delete_event_behind_the_log",
    "delete_sqlite_event",
    "tamper_event",
    "tamper_sqlite",
]

TAMPERED_DATA = b'{"amount":"1000000.00"}'
"""Valid JSON, so that reads still succeed and only the hash chain can tell."""

_UPDATE_TRIGGER = "events_are_append_only_update"
_DELETE_TRIGGER = "events_are_append_only_delete"


def tamper_event(
    store: EventStore, stream_id: str, version: int, data: bytes = TAMPERED_DATA
) -> None:
    """Replace the data of ``stream_id``'s event at ``version`` without going through the store."""
    if isinstance(store, MemoryStore):
        store.tamper(stream_id, version, data=data)
    elif isinstance(store, SQLiteStore):
        tamper_sqlite(store.path, stream_id, version, data)
    else:
        raise NotImplementedError(
            f"the contract suite cannot tamper with a {type(store).__name__}; override "
            "tamper(store, stream_id, version) in your StoreContract subclass"
        )


def tamper_sqlite(path: str, stream_id: str, version: int, data: bytes = TAMPERED_DATA) -> None:
    """Drop the append-only UPDATE trigger, edit the row, and restore the trigger as shipped.

    Uses its own ``sqlite3`` connection in one transaction, as an intruder with file access would.
    """
    trigger = _shipped_statement(f"CREATE TRIGGER {_UPDATE_TRIGGER} ")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"DROP TRIGGER {_UPDATE_TRIGGER}")
        updated = conn.execute(
            "UPDATE events SET data = ? WHERE stream_id = ? AND version = ?",
            (data.decode("utf-8"), stream_id, version),
        ).rowcount
        if updated != 1:
            conn.execute("ROLLBACK")
            raise LookupError(f"no event {stream_id!r}@{version} in {path} to tamper with")
        conn.execute(trigger)
        conn.execute("COMMIT")
    finally:
        conn.close()


def delete_event_behind_the_log(store: EventStore, stream_id: str, version: int) -> None:
    """Delete one stored event without going through the store's operations log."""
    if isinstance(store, MemoryStore):
        store.tamper_delete(stream_id, version)
    elif isinstance(store, SQLiteStore):
        delete_sqlite_event(store.path, stream_id, version)
    else:
        raise NotImplementedError(
            f"the contract suite cannot delete from a {type(store).__name__}; override "
            "delete_behind_the_log(store, stream_id, version) in your StoreContract subclass"
        )


def delete_sqlite_event(path: str, stream_id: str, version: int) -> None:
    """Drop the DELETE trigger, delete the row, and restore the trigger as shipped."""
    trigger = _shipped_statement(f"CREATE TRIGGER {_DELETE_TRIGGER} ", last=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"DROP TRIGGER {_DELETE_TRIGGER}")
        deleted = conn.execute(
            "DELETE FROM events WHERE stream_id = ? AND version = ?", (stream_id, version)
        ).rowcount
        if deleted != 1:
            conn.execute("ROLLBACK")
            raise LookupError(f"no event {stream_id!r}@{version} in {path} to delete")
        conn.execute(trigger)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _shipped_statement(start: str, *, last: bool = False) -> str:
    """The statement of the SQLite migrations that begins with ``start`` (the first one, or
    with ``last`` the latest: a later migration may redefine it)."""
    migrations = load_migrations("eventkeep.backends.sqlite")
    for migration in reversed(migrations) if last else migrations:
        pending = ""
        for line in migration.sql.splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                statement = "\n".join(
                    text for text in pending.splitlines() if not text.lstrip().startswith("--")
                ).strip()
                if statement.startswith(start):
                    return statement
                pending = ""
    raise LookupError(f"no statement starting with {start!r} in the SQLite migrations")
