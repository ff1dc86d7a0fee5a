"""The embedded SQLite backend."""

from eventkeep.backends.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
