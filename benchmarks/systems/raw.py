"""The raw driver floor (``raw``): plain ``sqlite3`` / ``psycopg`` storing an event store's row.

The report's "raw floor" columns and its "50% of the raw floor" targets use this floor. Every
event is stored with the columns an event store row has (those of eventkeep's
``migrations/0001_initial.sql``, without the hash chain):

- ``position``: the global log (SQLite ``INTEGER PRIMARY KEY``; PostgreSQL ``bigint`` identity
  primary key);
- ``stream_id``, ``version``: unique together (optimistic concurrency: a second writer of the
  same version hits the index);
- ``event_id``: a new time-ordered UUID per event (version 7: 48 bits of milliseconds, then
  random bits, as eventkeep makes them), unique-indexed: what idempotency needs
  (SQLite ``BLOB`` of 16 bytes; PostgreSQL ``uuid``);
- ``type``, ``schema_version``: the stored type name and its schema version (the same names
  and versions eventkeep writes: ``bank.AccountOpened`` 1, ``bank.Deposited`` 2);
- ``recorded_at``: SQLite, microseconds since the epoch set by the client (one clock reading per
  transaction); PostgreSQL, ``timestamptz`` set by the insert (``clock_timestamp()``);
- ``data``: the event's JSON, each event's dict encoded compactly with the ``json`` module
  (SQLite ``TEXT``;
  PostgreSQL ``jsonb``, dumped by psycopg's ``Jsonb``); the same bytes as eventkeep's data;
- ``metadata``: JSON ``{}`` per event, as eventkeep writes in these benchmarks (same types);
- an index on ``(type, position)``, as eventkeep has for reads by type. Stream ids are
  ``bankaccount-<key>``, as eventkeep's repository names them.

What it does not do, by design (this is a floor): no hash chain, no stream-head table, no
append-only triggers, no generated jsonb copies of the data (PostgreSQL stores ``data`` and
``metadata`` as ``jsonb`` once), no sequencer, no classes, no snapshots.

Statements: a command selects the stream's rows (every column, ``ORDER BY version``), decodes
``data`` and ``metadata`` into dicts, then inserts one row in its own transaction (SQLite
``BEGIN IMMEDIATE`` + ``executemany`` + ``COMMIT``; PostgreSQL one autocommit ``INSERT``). A
batch inserts its rows with ``executemany`` in one transaction (psycopg pipelines it). Reads
page the log (``WHERE position > ? ORDER BY position LIMIT 1000``). Every read selects every
column and decodes ``data`` and ``metadata`` into dicts with ``json.loads``; PostgreSQL selects
them as ``data::text, metadata::text`` (faster than psycopg's jsonb loader, which json-decodes
bytes: about 206,000 against 145,000 events/s on the log here), and psycopg returns the id and
the timestamp as ``uuid.UUID`` and ``datetime``. Durability as the stores: SQLite WAL +
``synchronous=FULL``, PostgreSQL defaults. The minimal floor of earlier runs is
``systems/raw_min.py`` (``raw-min``).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from benchmarks.systems.base import AMOUNT, OWNER, Target

_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY, "
    "stream_id TEXT NOT NULL, version INTEGER NOT NULL, event_id BLOB NOT NULL UNIQUE, "
    "type TEXT NOT NULL, schema_version INTEGER NOT NULL, data TEXT NOT NULL, "
    "metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE (stream_id, version))",
    "CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position)",
)
_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (position bigint GENERATED ALWAYS AS IDENTITY "
    'PRIMARY KEY, stream_id text COLLATE "C" NOT NULL, version bigint NOT NULL, '
    'event_id uuid NOT NULL UNIQUE, type text COLLATE "C" NOT NULL, '
    "schema_version integer NOT NULL, recorded_at timestamptz NOT NULL, data jsonb NOT NULL, "
    "metadata jsonb NOT NULL, UNIQUE (stream_id, version))",
    "CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position)",
)
_COLUMNS = (
    "position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at"
)
_PAGE = 1000

OPENED, DEPOSITED = "bank.AccountOpened", "bank.Deposited"
_SCHEMA_VERSIONS = {OPENED: 1, DEPOSITED: 2}
_encode = json.JSONEncoder(separators=(",", ":")).encode  # compact, like eventkeep's JSON
_METADATA: dict[str, Any] = {}  # what eventkeep's repository writes in these benchmarks

# Event ids: time-ordered (UUID version 7), random bits from a private generator seeded from
# os.urandom and reseeded in forked children (as eventkeep does; uuid4() would cost an
# os.urandom call per id and put every id on a random page of the unique index).
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)
_bits = _random.getrandbits
_V7 = (0x7 << 76) | (0b10 << 62)
_LOW62 = (1 << 62) - 1


def _new_id() -> int:
    rand = _bits(74)
    return (time.time_ns() // 1_000_000) << 80 | _V7 | (rand >> 62) << 64 | (rand & _LOW62)


def _stream(key: str) -> str:
    return f"bankaccount-{key}"


def _opened() -> dict[str, Any]:
    return {"owner": OWNER, "currency": "EUR"}


def _deposited(reference: str) -> dict[str, Any]:
    return {"amount": str(AMOUNT), "currency": "EUR", "reference": reference}


_New = tuple[str, int, str, dict[str, Any]]  # stream_id, version, type, data
_Row = tuple[Any, ...]  # the columns of _COLUMNS, data and metadata decoded to dicts


class _RawSubject:
    """The workloads over three driver primitives: a stream's rows, an insert, a log page."""

    system = "raw"
    conflict: tuple[type[BaseException], ...] = ()

    def _rows(self, stream_id: str) -> list[_Row]:
        raise NotImplementedError

    def _insert(self, events: list[_New]) -> None:
        raise NotImplementedError

    def _page(self, after: int) -> list[_Row]:
        raise NotImplementedError

    def create(self, key: str, reference: str) -> None:
        self._insert([(_stream(key), 1, OPENED, _opened())])

    def command(self, key: str, reference: str) -> None:
        stream_id = _stream(key)
        rows = self._rows(stream_id)
        version = rows[-1][2] if rows else 0
        self._insert([(stream_id, version + 1, DEPOSITED, _deposited(reference))])

    def create_with(self, key: str, events: int, reference: str) -> None:
        stream_id = _stream(key)
        new: list[_New] = [(stream_id, 1, OPENED, _opened())]
        new.extend((stream_id, v, DEPOSITED, _deposited(reference)) for v in range(2, events + 1))
        self._insert(new)

    def create_many(self, keys: list[str], events: int, reference: str) -> None:
        new: list[_New] = []
        for key in keys:
            stream_id = _stream(key)
            new.append((stream_id, 1, OPENED, _opened()))
            new.extend(
                (stream_id, v, DEPOSITED, _deposited(reference)) for v in range(2, events + 1)
            )
        self._insert(new)

    def load(self, key: str) -> int:
        rows = self._rows(_stream(key))
        return int(rows[-1][2]) if rows else 0

    def take_snapshot(self, key: str) -> bool:
        return False

    def load_snapshotted(self, key: str) -> int:
        raise NotImplementedError("the raw floor has no snapshots")

    def read_all(self) -> int:
        return self._fold(None)

    def catch_up(self) -> int:
        return self._fold(defaultdict(Decimal))

    def _fold(self, balances: defaultdict[str, Decimal] | None) -> int:
        after, count = 0, 0
        while True:
            rows = self._page(after)
            if balances is not None:
                for row in rows:
                    if row[4] == DEPOSITED:
                        balances[row[1]] += Decimal(row[6]["amount"])
            count += len(rows)
            if len(rows) < _PAGE:
                return count
            after = rows[-1][0]

    def fill(self, streams: int, events: int, reference: str) -> None:
        per_stream = events // streams
        for first in range(0, streams, 10):
            group = [_stream(f"fill{n}") for n in range(first, min(first + 10, streams))]
            for start in range(0, per_stream, 100):
                size = min(100, per_stream - start)
                self._insert(
                    [
                        (stream_id, v, DEPOSITED, _deposited(reference))
                        for stream_id in group
                        for v in range(start + 1, start + size + 1)
                    ]
                )

    def close(self) -> None:
        raise NotImplementedError


class RawSQLiteSubject(_RawSubject):
    conflict = (sqlite3.IntegrityError,)

    _INSERT = (
        "INSERT INTO events (stream_id, version, event_id, type, schema_version, data, "
        "metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    _STREAM = f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version"
    _LOG = f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"

    def __init__(self, target: Target, *, create_tables: bool = True) -> None:
        self.conn = sqlite3.connect(target.path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        if create_tables:
            for statement in _SQLITE_SCHEMA:
                self.conn.execute(statement)

    def _rows(self, stream_id: str) -> list[_Row]:
        return _decoded(self.conn.execute(self._STREAM, (stream_id,)).fetchall())

    def _insert(self, events: list[_New]) -> None:
        dumps, versions = _encode, _SCHEMA_VERSIONS
        now = time.time_ns() // 1000
        rows = [
            (s, v, _new_id().to_bytes(16, "big"), t, versions[t], dumps(d), dumps(_METADATA), now)
            for s, v, t, d in events
        ]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(self._INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _page(self, after: int) -> list[_Row]:
        return _decoded(self.conn.execute(self._LOG, (after, _PAGE)).fetchall())

    def close(self) -> None:
        self.conn.close()


def _decoded(rows: list[tuple[Any, ...]]) -> list[_Row]:
    loads = json.loads
    return [(p, s, v, e, t, sv, loads(d), loads(m), r) for p, s, v, e, t, sv, d, m, r in rows]


class RawPostgresSubject(_RawSubject):
    _INSERT = (
        "INSERT INTO events (stream_id, version, event_id, type, schema_version, data, "
        "metadata, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, clock_timestamp())"
    )
    # jsonb selected as text and decoded with json.loads: faster than psycopg's jsonb loader
    # (which calls json.loads on bytes), so the floor is not held back by the driver's default.
    _TEXT_COLUMNS = _COLUMNS.replace("data, metadata", "data::text, metadata::text")
    _STREAM = f"SELECT {_TEXT_COLUMNS} FROM events WHERE stream_id = %s ORDER BY version"
    _LOG = f"SELECT {_TEXT_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"

    def __init__(self, target: Target, *, create_tables: bool = True) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        self.conflict = (psycopg.errors.UniqueViolation,)
        self._jsonb = Jsonb
        self.conn = psycopg.connect(target.pg_url, autocommit=True)
        if create_tables:
            for statement in _PG_SCHEMA:
                self.conn.execute(statement)

    def _rows(self, stream_id: str) -> list[_Row]:
        return _decoded(self.conn.execute(self._STREAM, (stream_id,)).fetchall())

    def _insert(self, events: list[_New]) -> None:
        jsonb, versions, make_uuid = self._jsonb, _SCHEMA_VERSIONS, uuid.UUID
        rows = [
            (s, v, make_uuid(int=_new_id()), t, versions[t], jsonb(d), jsonb(_METADATA))
            for s, v, t, d in events
        ]
        if len(rows) == 1:
            self.conn.execute(self._INSERT, rows[0])  # autocommit: one round trip
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(self._INSERT, rows)

    def _page(self, after: int) -> list[_Row]:
        return _decoded(self.conn.execute(self._LOG, (after, _PAGE)).fetchall())

    def close(self) -> None:
        self.conn.close()
