"""Opening a SQLite store: the database file (created with ``file_mode``), the connection
settings (WAL, ``synchronous``, ``busy_timeout``) and the migrations that bring the schema up
to date. :class:`~eventkeep.backends.sqlite.store.SQLiteStore` calls these when it opens."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eventkeep.backends.sqlite import sql
from eventkeep.errors import BackendUnavailableError, ConfigurationError, SchemaVersionError
from eventkeep.store.migrations import load_migrations

__all__ = [
    "DEFAULT_FILE_MODE",
    "SYNCHRONOUS_MODES",
    "check_file_mode",
    "configure",
    "create_file",
    "migrate",
]

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

DEFAULT_FILE_MODE = 0o600
"""Permissions of a new database file (and its -wal and -shm files): owner only, as an event
store holds personal data. The ``file_mode`` store option changes them (``?file_mode=0640``)."""


def check_file_mode(value: Any) -> int:
    """``file_mode`` as an int: octal text (``"0640"``) or an int (``0o640``), owner rw kept."""
    mode: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and value.strip():
        try:
            mode = int(value.strip(), 8)
        except ValueError:
            mode = None
    if mode is None or not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        raise ConfigurationError(
            "file_mode must be permission bits in octal from 0600 to 0777 that let the owner "
            f"read and write (e.g. 0600, 0640), got {value!r}"
        )
    return mode


def create_file(path: str, url: str, file_mode: int) -> None:
    """Create a new database file with ``file_mode`` (SQLite would make it 0644 under the
    usual umask); its -wal and -shm files take the database file's mode. An existing file
    keeps its mode. A missing directory is a ConfigurationError that names it."""
    if path.startswith("file:"):
        return  # a SQLite URI filename: SQLite opens it as it says
    directory = Path(path).parent
    if not directory.is_dir():
        raise ConfigurationError(
            f"{url}: the directory {directory} does not exist (eventkeep creates the "
            "database file, not its directory)"
        )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    except FileExistsError:
        return
    except OSError as exc:
        raise BackendUnavailableError(
            f"{url}: cannot create the database file ({exc.strerror})"
        ) from exc
    try:
        os.fchmod(fd, file_mode)  # exactly the mode asked for, whatever the umask
    finally:
        os.close(fd)


def configure(conn: sqlite3.Connection, url: str, synchronous: str, busy_timeout: float) -> None:
    """The writer connection's settings: busy timeout, WAL, ``synchronous``, temp store."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    mode = _switch_to_wal(conn, busy_timeout)
    if str(mode).lower() not in ("wal", "memory"):
        raise BackendUnavailableError(f"{url}: could not switch to WAL (got {mode!r})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # Savepoints (an append inside a transaction, the event-id check of an insert) keep the
    # pages they change in a sub-journal: in memory, not a temporary file written page by
    # page (14x the write calls of an append without it, measured).
    conn.execute("PRAGMA temp_store = MEMORY")


def _switch_to_wal(conn: sqlite3.Connection, busy_timeout: float) -> Any:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the lock it needs.

    SQLite answers "database is locked" at once here, without its busy handler, when
    another connection is converting the same new file (processes opening a new store at
    once): retry, with growing pauses, for up to ``busy_timeout``.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            busy = (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def migrate(
    conn: sqlite3.Connection,
    url: str,
    write: Callable[[], contextlib.AbstractContextManager[sqlite3.Cursor]],
) -> None:
    """Bring the schema up to date, in a write transaction (``write``) only when it is not."""
    migrations = load_migrations("eventkeep.backends.sqlite")
    latest = migrations[-1].version
    # An up-to-date schema needs no write lock: opening must not queue behind a writer.
    if conn.execute(sql.MIGRATIONS_TABLE_EXISTS).fetchone() and _check_schema(
        url, conn.execute(sql.SCHEMA_VERSION).fetchone()[0], latest
    ):
        return
    with write() as cur:
        cur.execute(sql.CREATE_MIGRATIONS)
        current = cur.execute(sql.SCHEMA_VERSION).fetchone()[0]
        _check_schema(url, current, latest)
        for migration in migrations[current:]:
            for statement in _statements(migration.sql):
                cur.execute(statement)
            cur.execute(sql.RECORD_MIGRATION, (migration.version, migration.name))


def _check_schema(url: str, current: int, latest: int) -> bool:
    """True when the schema is current; raises when it is newer than this code knows."""
    if current > latest:
        raise SchemaVersionError(
            f"{url} has schema version {current}, but this eventkeep knows "
            f"versions up to {latest}; upgrade eventkeep to open it"
        )
    return bool(current == latest)


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (trigger bodies hold semicolons)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not pending.strip():
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ConfigurationError(f"migration ends in an incomplete statement: {pending.strip()!r}")
