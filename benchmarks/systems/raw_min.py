"""The minimal raw floor (``raw-min``): the least any event store does, with plain drivers.

Kept for comparison next to the equivalent floor (``systems/raw.py``, system ``raw``), which
stores what an event store row holds; the report shows this one only for the batch append and
the command loop. One table (``position`` primary key, ``stream_id``, ``version``, ``type``,
JSON ``data``, unique ``(stream_id, version)`` for optimistic concurrency), no event ids, no
metadata, no timestamps, no type index, no hashes, no classes; a batch encodes its deposit's
JSON once and inserts it for every event. A command selects the stream's rows and
``json.loads`` each, then inserts one row in its own transaction; reads decode with
``json.loads`` (SQLite, TEXT) or psycopg's jsonb loader (PostgreSQL, which also uses
``json.loads``). Same durability as the stores: SQLite WAL + ``synchronous=FULL``, PostgreSQL
defaults (autocommit single-row inserts, one transaction per batch).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from benchmarks.systems.base import AMOUNT, OWNER, Target

_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, "
    "version INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, "
    "UNIQUE (stream_id, version))"
)
_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (position BIGSERIAL PRIMARY KEY, stream_id TEXT NOT NULL, "
    "version INTEGER NOT NULL, type TEXT NOT NULL, data JSONB NOT NULL, "
    "UNIQUE (stream_id, version))"
)


def _opened() -> dict[str, Any]:
    return {"owner": OWNER, "currency": "EUR"}


def _deposited(reference: str) -> dict[str, Any]:
    return {"amount": str(AMOUNT), "currency": "EUR", "reference": reference}


class _RawMinSubject:
    """The workloads over three driver primitives: a stream's rows, an insert, a log page."""

    system = "raw-min"
    conflict: tuple[type[BaseException], ...] = ()

    def _rows(self, key: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _insert(self, rows: list[tuple[str, int, str, Any]]) -> None:
        raise NotImplementedError

    def _data(self, value: dict[str, Any]) -> Any:
        raise NotImplementedError

    def create(self, key: str, reference: str) -> None:
        self._insert([(key, 1, "Opened", self._data(_opened()))])

    def command(self, key: str, reference: str) -> None:
        version = len(self._rows(key))
        self._insert([(key, version + 1, "Deposited", self._data(_deposited(reference)))])

    def create_with(self, key: str, events: int, reference: str) -> None:
        data = self._data(_deposited(reference))
        rows = [(key, 1, "Opened", self._data(_opened()))]
        rows.extend((key, v, "Deposited", data) for v in range(2, events + 1))
        self._insert(rows)

    def create_many(self, keys: list[str], events: int, reference: str) -> None:
        data = self._data(_deposited(reference))
        rows = []
        for key in keys:
            rows.append((key, 1, "Opened", self._data(_opened())))
            rows.extend((key, v, "Deposited", data) for v in range(2, events + 1))
        self._insert(rows)

    def load(self, key: str) -> int:
        return len(self._rows(key))

    def take_snapshot(self, key: str) -> bool:
        return False

    def load_snapshotted(self, key: str) -> int:
        raise NotImplementedError("the minimal raw floor has no snapshots")

    def read_all(self) -> int:
        raise NotImplementedError("the minimal floor runs the batch and command workloads only")

    def catch_up(self) -> int:
        raise NotImplementedError("the minimal floor runs the batch and command workloads only")

    def fill(self, streams: int, events: int, reference: str) -> None:
        per_stream = events // streams
        data = self._data(_deposited(reference))
        for first in range(0, streams, 10):
            group = range(first, min(first + 10, streams))
            for start in range(0, per_stream, 100):
                size = min(100, per_stream - start)
                self._insert(
                    [
                        (f"fill{n}", v, "Deposited", data)
                        for n in group
                        for v in range(start + 1, start + size + 1)
                    ]
                )

    def close(self) -> None:
        raise NotImplementedError


class RawMinSQLiteSubject(_RawMinSubject):
    conflict = (sqlite3.IntegrityError,)

    def __init__(self, target: Target, *, create_tables: bool = True) -> None:
        self.conn = sqlite3.connect(target.path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        if create_tables:
            self.conn.execute(_SQLITE_SCHEMA)

    def _rows(self, key: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT data FROM events WHERE stream_id = ? ORDER BY version", (key,)
        ).fetchall()
        return [json.loads(data) for (data,) in rows]

    def _insert(self, rows: list[tuple[str, int, str, Any]]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO events (stream_id, version, type, data) VALUES (?, ?, ?, ?)", rows
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _data(self, value: dict[str, Any]) -> Any:
        return json.dumps(value)

    def close(self) -> None:
        self.conn.close()


class RawMinPostgresSubject(_RawMinSubject):
    def __init__(self, target: Target, *, create_tables: bool = True) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        self.conflict = (psycopg.errors.UniqueViolation,)
        self._jsonb = Jsonb
        self.conn = psycopg.connect(target.pg_url, autocommit=True)
        if create_tables:
            self.conn.execute(_PG_SCHEMA)

    def _rows(self, key: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT data FROM events WHERE stream_id = %s ORDER BY version", (key,)
        ).fetchall()
        return [data for (data,) in rows]  # jsonb: psycopg decodes with json.loads

    def _insert(self, rows: list[tuple[str, int, str, Any]]) -> None:
        statement = "INSERT INTO events (stream_id, version, type, data) VALUES (%s, %s, %s, %s)"
        if len(rows) == 1:
            self.conn.execute(statement, rows[0])  # autocommit: one round trip
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(statement, rows)

    def _data(self, value: dict[str, Any]) -> Any:
        return self._jsonb(value)

    def close(self) -> None:
        self.conn.close()
