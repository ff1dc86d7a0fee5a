"""The growth benchmark's events and stores: what ``benchmarks/growth.py`` fills and measures.

One ``Side`` per backend: an eventkeep store and the raw floor (the columns of
``systems/raw.py``) filled with the same events, with the operations the benchmark times.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import eventkeep
from eventkeep import NewEvent, RawEvent, StreamAppend

SIZES = (10_000, 1_000_000, 10_000_000)
SMOKE_SIZES = (2_000, 20_000)
STREAM_EVENTS, LONG_EVENTS, LONG_EVERY = 10, 500, 1000
BATCH_STREAMS = 1000
BLOCK = 50  # operations per interleaved block
PLAN_SAMPLES = 200  # streams whose read is EXPLAINed per subject and size (PostgreSQL)

_rng = random.Random(17)
_REFERENCES = [
    "".join(
        _rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(_rng.randint(140, 340))
    )
    for _ in range(97)
]
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


# -- the events ---------------------------------------------------------------------------------


def stream_id(k: int) -> str:
    return f"account-{k}"


def stream_length(k: int) -> int:
    return LONG_EVENTS if k % LONG_EVERY == LONG_EVERY - 1 else STREAM_EVENTS


def event_data(k: int, n: int) -> dict[str, Any]:
    return {
        "amount": f"{(k * 7 + n) % 1000}.{n:02d}",
        "currency": "EUR",
        "n": n,
        "reference": _REFERENCES[(k + n) % len(_REFERENCES)],
    }


def event_metadata(k: int) -> dict[str, Any]:
    return {
        "correlation_id": uuid.UUID(int=k * 2654435761 % (1 << 128)).hex,
        "source": "growth-benchmark",
        "user": f"user-{k % 997}",
    }


def event_type(n: int) -> str:
    return "AccountOpened" if n == 1 else "Deposited"


def tags_of(k: int, n: int) -> list[str] | None:
    return [f"account:{k}"] if n % 5 == 0 else None


class Layout:
    """The streams filled so far; which are read and which are appended to."""

    def __init__(self) -> None:
        self.streams = 0
        self.events = 0
        # Streams appended to by the measurements: their versions in eventkeep and in the floor.
        self.versions: dict[str, dict[int, int]] = {"ek": {}, "raw": {}}

    def batches(self, target: int) -> Iterator[list[int]]:
        """Stream numbers to fill, a batch at a time, until the store holds ``target`` events."""
        while self.events < target:
            batch: list[int] = []
            while len(batch) < BATCH_STREAMS and self.events < target:
                batch.append(self.streams)
                self.events += stream_length(self.streams)
                self.streams += 1
            yield batch

    def readable(self, rng: random.Random) -> int:
        """A 10-event stream never appended to (even numbers; appends take odd ones)."""
        while True:
            k = rng.randrange(0, self.streams) & ~1
            if stream_length(k) == STREAM_EVENTS:
                return k

    def appendable(self, rng: random.Random) -> int:
        while True:
            k = rng.randrange(0, self.streams) | 1
            if k < self.streams and stream_length(k) == STREAM_EVENTS:
                return k


# -- the two sides of one backend ---------------------------------------------------------------


class Side:
    """eventkeep and the raw floor on one backend."""

    name = ""
    store: eventkeep.EventStore

    def raw_fill(self, rows: list[tuple[Any, ...]]) -> None: ...
    def raw_append(self, k: int, version: int) -> None: ...
    def raw_read(self, k: int) -> int: ...
    def raw_page(self, after: int) -> list[tuple[Any, ...]]: ...
    def settle(self) -> str: ...
    def sizes(self) -> tuple[int, int]: ...
    def explain(self, k: int) -> dict[str, str]:
        return {}

    def columns(self) -> dict[str, float]:
        """Average stored bytes of some of eventkeep's columns (where the backend says)."""
        return {}

    def plan_samplers(self) -> dict[str, Callable[[int], tuple[float, int, int]]]:
        """Server-side cost of one stream read: (execution ms, buffers hit, buffers read) of
        ``EXPLAIN (ANALYZE, BUFFERS)``, for eventkeep and the floor (where the backend says)."""
        return {}

    def close(self) -> None: ...

    def ek_fill(self, batch: list[int]) -> list[tuple[Any, ...]]:
        """Append the batch's streams to eventkeep; the same events as raw rows, in the same
        order. A long stream is one append; the 10-event streams are interleaved: one event of
        each per ``append_many``, 10 rounds, so that a stream's events lie on different pages
        of the log, as streams written over time do."""
        rows: list[tuple[Any, ...]] = []
        now = time.time_ns() // 1000
        longs = [k for k in batch if stream_length(k) != STREAM_EVENTS]
        shorts = [k for k in batch if stream_length(k) == STREAM_EVENTS]
        metas = {k: event_metadata(k) for k in batch}
        metas_json = {k: _encode(m) for k, m in metas.items()}
        for n_round in range(1, STREAM_EVENTS + 1):
            appends = []
            for k in (longs + shorts) if n_round == 1 else shorts:
                sid = stream_id(k)
                first = 1 if n_round == 1 else n_round
                last = stream_length(k) if k in longs else n_round
                items = []
                for n in range(first, last + 1):
                    data, kind = event_data(k, n), event_type(n)
                    items.append(NewEvent(RawEvent(kind, data), tags=tags_of(k, n)))
                    rows.append((sid, n, uuid.uuid4(), kind, 1, _encode(data), metas_json[k], now))
                appends.append(StreamAppend(sid, items, first - 1, metas[k]))
            self.store.append_many(appends)
        return rows

    def ek_append(self, k: int, version: int) -> None:
        # The same append at every size: one to a stream whose head this store object has not
        # learned, as in a process that has not appended to it. Left to learn, the store knew
        # the heads of the small stores' ~475 appendable streams after a few hundred appends
        # and sent those appends in one round trip (PostgreSQL) or without the head read
        # (SQLite), while the large stores' random streams were rarely known: the growth
        # ratio compared two different operations.
        self.store._known.forget_heads()  # type: ignore[attr-defined]
        item = NewEvent(RawEvent("Deposited", event_data(k, version + 1)))
        self.store.append(stream_id(k), [item], version, event_metadata(k))

    def ek_read(self, k: int) -> int:
        events = list(self.store.read_stream(stream_id(k)))
        for e in events:
            e.data  # noqa: B018 (decoded, as the floor decodes)
            e.metadata  # noqa: B018
        return len(events)

    def ek_catch_up(self) -> int:
        seen = 0
        for e in self.store.read_all():
            e.data  # noqa: B018
            e.metadata  # noqa: B018
            seen += 1
        return seen

    def raw_catch_up(self) -> int:
        seen, after = 0, 0
        loads = json.loads
        while True:
            page = self.raw_page(after)
            for row in page:
                loads(row[6])
                loads(row[7])
            seen += len(page)
            if len(page) < 1000:
                return seen
            after = page[-1][0]


_COLUMNS = (
    "position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at"
)


class SqliteSide(Side):
    name = "sqlite"
    _SCHEMA = (
        "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, "
        "version INTEGER NOT NULL, event_id BLOB NOT NULL UNIQUE, type TEXT NOT NULL, "
        "schema_version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, "
        "recorded_at INTEGER NOT NULL, UNIQUE (stream_id, version))",
        "CREATE INDEX events_by_type ON events (type, position)",
    )
    _INSERT = (
        "INSERT INTO events (stream_id, version, event_id, type, schema_version, data, "
        "metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    _STREAM = f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version"
    _LOG = f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT 1000"

    def __init__(self, folder: Path) -> None:
        self.ek_path, self.raw_path = folder / "eventkeep.db", folder / "raw.db"
        self.store = eventkeep.open_store(f"sqlite:///{self.ek_path}")
        self.raw = sqlite3.connect(self.raw_path, isolation_level=None)
        self.raw.execute("PRAGMA journal_mode = WAL")
        self.raw.execute("PRAGMA synchronous = FULL")
        for statement in self._SCHEMA:
            self.raw.execute(statement)

    def raw_fill(self, rows: list[tuple[Any, ...]]) -> None:
        self.raw.execute("BEGIN IMMEDIATE")
        self.raw.executemany(self._INSERT, [(*r[:2], r[2].bytes, *r[3:]) for r in rows])
        self.raw.execute("COMMIT")

    def raw_append(self, k: int, version: int) -> None:
        data = _encode(event_data(k, version + 1))
        row = (
            stream_id(k),
            version + 1,
            uuid.uuid4().bytes,
            "Deposited",
            1,
            data,
            _encode(event_metadata(k)),
            time.time_ns() // 1000,
        )
        self.raw.execute("BEGIN IMMEDIATE")
        self.raw.execute(self._INSERT, row)
        self.raw.execute("COMMIT")

    def raw_read(self, k: int) -> int:
        rows = self.raw.execute(self._STREAM, (stream_id(k),)).fetchall()
        for row in rows:
            json.loads(row[6])
            json.loads(row[7])
        return len(rows)

    def raw_page(self, after: int) -> list[tuple[Any, ...]]:
        return self.raw.execute(self._LOG, (after,)).fetchall()

    def settle(self) -> str:
        for path in (self.ek_path, self.raw_path):
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return "WAL checkpoint (TRUNCATE) of both files"

    def sizes(self) -> tuple[int, int]:
        def size(path: Path) -> int:
            wal = Path(f"{path}-wal")
            return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

        return size(self.ek_path), size(self.raw_path)

    def close(self) -> None:
        self.store.close()
        self.raw.close()


class PostgresSide(Side):
    name = "postgres"
    _SCHEMA = (
        "CREATE TABLE events (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        'stream_id text COLLATE "C" NOT NULL, version bigint NOT NULL, '
        'event_id uuid NOT NULL UNIQUE, type text COLLATE "C" NOT NULL, '
        "schema_version integer NOT NULL, recorded_at timestamptz NOT NULL, "
        "data jsonb NOT NULL, metadata jsonb NOT NULL, UNIQUE (stream_id, version))",
        "CREATE INDEX events_by_type ON events (type, position)",
    )
    _INSERT = (
        "INSERT INTO events (stream_id, version, event_id, type, schema_version, data, "
        "metadata, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, clock_timestamp())"
    )
    _TEXT = _COLUMNS.replace("data, metadata", "data::text, metadata::text")
    _STREAM = f"SELECT {_TEXT} FROM events WHERE stream_id = %s ORDER BY version"
    _LOG = f"SELECT {_TEXT} FROM events WHERE position > %s ORDER BY position LIMIT 1000"
    _COPY = (
        "COPY events (stream_id, version, event_id, type, schema_version, data, metadata, "
        "recorded_at) FROM STDIN"
    )

    def __init__(self, ek_url: str, raw_url: str) -> None:
        import psycopg

        self.ek_url, self.raw_url = ek_url, raw_url
        self._planners: list[Any] = []
        self.store = eventkeep.open_store(ek_url)
        self.raw = psycopg.connect(raw_url, autocommit=True)
        for statement in self._SCHEMA:
            self.raw.execute(statement)

    def raw_fill(self, rows: list[tuple[Any, ...]]) -> None:
        stamp = datetime.datetime.now(datetime.UTC)
        with self.raw.transaction(), self.raw.cursor() as cur, cur.copy(self._COPY) as copy:
            for r in rows:
                copy.write_row((*r[:7], stamp))

    def raw_append(self, k: int, version: int) -> None:
        data = _encode(event_data(k, version + 1))
        row = (
            stream_id(k),
            version + 1,
            uuid.uuid4(),
            "Deposited",
            1,
            data,
            _encode(event_metadata(k)),
        )
        self.raw.execute(self._INSERT, row)

    def raw_read(self, k: int) -> int:
        rows = self.raw.execute(self._STREAM, (stream_id(k),)).fetchall()
        for row in rows:
            json.loads(row[6])
            json.loads(row[7])
        return len(rows)

    def raw_page(self, after: int) -> list[tuple[Any, ...]]:
        return self.raw.execute(self._LOG, (after,)).fetchall()

    def _each(self, action: Callable[[Any, str], None]) -> None:
        import psycopg

        for url, who in ((self.ek_url, "eventkeep"), (self.raw_url, "raw")):
            with psycopg.connect(url, autocommit=True) as conn:
                action(conn, who)

    vacuum = True

    def settle(self) -> str:
        if not self.vacuum:
            self._each(lambda conn, _who: conn.execute("CHECKPOINT"))
            return "a CHECKPOINT only (no VACUUM: autovacuum as it comes, PostgreSQL's defaults)"
        self._each(lambda conn, _who: conn.execute("VACUUM ANALYZE"))
        self._each(lambda conn, _who: conn.execute("CHECKPOINT"))
        return "VACUUM ANALYZE of both databases, then CHECKPOINT"

    def sizes(self) -> tuple[int, int]:
        found: dict[str, int] = {}

        def measure(conn: Any, who: str) -> None:
            tables = "('events', 'streams', 'event_tags')" if who == "eventkeep" else "('events')"
            found[who] = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c "
                f"JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.relname IN {tables} "
                "AND c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()[0]

        self._each(measure)
        return int(found["eventkeep"]), int(found["raw"])

    def explain(self, k: int) -> dict[str, str]:
        from eventkeep.backends.postgres import sql

        plans: dict[str, str] = {}
        # The statement of eventkeep's first page of a stream read (a "live" read: see
        # EventStore._paged_stream).
        ek = (
            sql.read_stream(backwards=False, live=True)
            .replace("%s", "{}")
            .format(f"'{stream_id(k)}'", 1, 2**62, f"'{stream_id(k)}'", 10_000)
        )
        raw = self._STREAM.replace("%s", f"'{stream_id(k)}'")

        def run(conn: Any, who: str) -> None:
            schema = self.store_schema() if who == "eventkeep" else "public"
            conn.execute(f"SET search_path TO {schema}")
            statement = ek if who == "eventkeep" else raw
            rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}").fetchall()
            plans[who] = "\n".join(row[0] for row in rows)

        self._each(run)
        return plans

    def plan_samplers(self) -> dict[str, Callable[[int], tuple[float, int, int]]]:
        import psycopg

        from eventkeep.backends.postgres import sql

        def sampler(url: str, schema: str, ek: bool) -> Callable[[int], tuple[float, int, int]]:
            conn = psycopg.connect(url, autocommit=True)
            self._planners.append(conn)
            conn.execute(f"SET search_path TO {schema}")
            statement = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + (
                sql.read_stream(backwards=False, live=True) if ek else self._STREAM
            )

            def sample(k: int) -> tuple[float, int, int]:
                sid = stream_id(k)
                params = (sid, 1, 2**62, sid, 1000) if ek else (sid,)
                plan = conn.execute(statement, params).fetchone()[0][0]
                top = plan["Plan"]
                return (
                    float(plan["Execution Time"]),
                    int(top.get("Shared Hit Blocks", 0)),
                    int(top.get("Shared Read Blocks", 0)),
                )

            return sample

        return {
            "ek": sampler(self.ek_url, self.store_schema(), True),
            "raw": sampler(self.raw_url, "public", False),
        }

    def columns(self) -> dict[str, float]:
        found: dict[str, float] = {}

        def measure(conn: Any, who: str) -> None:
            if who != "eventkeep":
                return
            conn.execute(f"SET search_path TO {self.store_schema()}")
            names = ("data_bytes", "metadata_bytes", "hash", "tags")
            sizes = ", ".join(f"avg(coalesce(pg_column_size({c}), 0))" for c in names)
            row = conn.execute(
                f"SELECT {sizes}, avg(pg_column_size(e.*)) FROM events AS e "
                "TABLESAMPLE SYSTEM (1) REPEATABLE (17)"
            ).fetchone()
            found.update(
                {n: round(float(v or 0), 1) for n, v in zip((*names, "row"), row, strict=True)}
            )

        self._each(measure)
        return found

    def store_schema(self) -> str:
        import psycopg

        with psycopg.connect(self.ek_url) as conn:
            row = conn.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'events' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema') LIMIT 1"
            ).fetchone()
        return str(row[0]) if row else "public"

    def close(self) -> None:
        self.store.close()
        self.raw.close()
        for conn in self._planners:
            conn.close()
