"""Online backups of SQLite stores (``sqlite3.Connection.backup``), consistent while writers
run. PostgreSQL stores are backed up with ``pg_dump`` (docs/moving.md)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from eventkeep.errors import BackendUnavailableError, ConfigurationError, ValidationError
from eventkeep.store.base import EventStore

__all__ = ["PG_DUMP_HINT", "backup_sqlite"]

PG_DUMP_HINT = (
    "pg_dump --format=custom --schema={schema} --file=eventkeep.dump '{url}'  "
    "(restore with: pg_restore --dbname='{url}' eventkeep.dump; then eventkeep verify)"
)
"""What to run instead of ``eventkeep backup`` on PostgreSQL (docs/moving.md)."""


def backup_sqlite(
    store: EventStore,
    destination: str | Path,
    *,
    progress: Callable[[int, int], object] | None = None,
) -> Path:
    """Copy a SQLite store's database to ``destination`` (a new file), consistent while other
    threads and processes write: SQLite's online backup copies every page in one read
    transaction (a WAL snapshot: writers go on meanwhile; the copy holds what was committed
    when it began). ``progress(done_pages, total_pages)`` is called as it goes.
    Returns the destination's path. The backup is a store like any other: open it, verify it.
    """
    from eventkeep.backends.sqlite import SQLiteStore

    if not isinstance(store, SQLiteStore):
        raise ConfigurationError(
            f"backup copies SQLite stores; {store.url} is not one (for PostgreSQL use pg_dump, "
            "see docs/moving.md)"
        )
    if store.path in ("", ":memory:"):
        raise ConfigurationError("an in-memory SQLite store has no file to back up")
    target = Path(destination)
    if target.exists():
        raise ValidationError(f"{target} exists already: a backup goes to a new file")
    if not target.parent.is_dir():
        raise ValidationError(f"the directory {target.parent} does not exist")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, store.file_mode)
    except OSError as exc:
        raise ValidationError(f"cannot create the backup {target}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, store.file_mode)
    finally:
        os.close(fd)
    try:
        source = sqlite3.connect(store.path, timeout=store._busy_timeout)
        try:
            copy = sqlite3.connect(target)
            try:
                with copy:
                    # pages=-1: every page in one step, one read transaction: one snapshot.
                    source.backup(
                        copy,
                        pages=-1,
                        progress=None
                        if progress is None
                        else lambda _status, left, total: progress(total - left, total),
                    )
            finally:
                copy.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise BackendUnavailableError(f"backup of {store.url} failed: {exc}") from exc
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
