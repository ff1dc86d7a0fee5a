"""Growth: does a store slow down as its log grows? eventkeep beside the raw floor, per size.

For each backend (a SQLite file with the store's default durability: WAL, ``synchronous=FULL``;
PostgreSQL on a throwaway durable cluster, fsync on, ``pg.py``, or
``$EVENTKEEP_BENCH_POSTGRES_URL``) one eventkeep store and one raw floor table (the columns of
``systems/raw.py``: the same row without hash chain, heads, tags, triggers or generated columns)
are grown side by side to each size (10,000, 1,000,000 and 10,000,000 events by default) with
the same events, and at each size, interleaved between the two in blocks so that the machine's
noise hits both:

- a single-event append with its expected version to an existing stream (p50/p99);
- a stream read of a 10-event stream picked at random over the whole store, every event's data
  and metadata decoded (p50/p99);
- bytes per event on disk (SQLite: the file and its WAL after a checkpoint; PostgreSQL:
  ``pg_total_relation_size`` of the events, the stream heads and the tag index, indexes and
  TOAST included) and the ratio to the floor's;
- at the largest size, catch-up of the whole log (every event's data and metadata decoded),
  events/s;
- PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)`` of the stream read of both, written beside.

The events: streams of 10 events, 1 stream in 1,000 of 500 (about 10.5 events per stream on
average); data of 200-400 bytes of JSON, metadata of about 90 bytes (a correlation id, a user,
a source), 1 event in 5 tagged. They are filled in bulk, untimed: eventkeep through
``append_many`` (1,000 streams per call), the floor through ``COPY`` (PostgreSQL) or
``executemany`` (SQLite) in one transaction per batch; after each fill PostgreSQL runs
``VACUUM ANALYZE`` on both databases and a ``CHECKPOINT``, SQLite a WAL checkpoint (stated in
the results). The machine's load average is recorded around every measurement.

::

    python -m benchmarks.growth                              # 10k, 1M, 10M on both backends
    python -m benchmarks.growth --smoke                      # 2,000 and 20,000 events, few ops
    python -m benchmarks.growth --backends postgres --sizes 10000,1000000 --keep /tmp/growth
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from eventkeep import NewEvent, RawEvent, StreamAppend

RESULTS = Path(__file__).resolve().parent / "results"
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
        ek = sql.READ_STREAM_FORWARDS.replace("%s", "{}").format(
            f"'{stream_id(k)}'", 1, 2**62, 10_000
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
                sql.READ_STREAM_FORWARDS if ek else self._STREAM
            )

            def sample(k: int) -> tuple[float, int, int]:
                params = (stream_id(k), 1, 2**62, 1000) if ek else (stream_id(k),)
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
            names = ("data_bytes", "metadata_bytes", "data", "metadata", "hash", "tags")
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


# -- measuring ----------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6, 1),
        "mean_us": round(statistics.fmean(ordered) * 1e6, 1),
        "ops": len(ordered),
    }


Op = Callable[[int], Any]


def interleaved(
    ops: int, groups: list[tuple[Callable[[], int], dict[str, Op]]]
) -> dict[str, list[float]]:
    """``ops`` calls of every subject, in blocks of BLOCK, the subjects' order rotating from
    one block to the next. Each group shares one draw of keys (eventkeep and its floor read
    or append to the same streams)."""
    timer = time.perf_counter
    names = [name for _, subjects in groups for name in subjects]
    times: dict[str, list[float]] = {name: [] for name in names}
    for block in range(max(1, ops // BLOCK)):
        keys: dict[str, list[int]] = {}
        for pick, subjects in groups:
            drawn = [pick() for _ in range(BLOCK)]
            keys.update(dict.fromkeys(subjects, drawn))
        ops_of = {name: op for _, subjects in groups for name, op in subjects.items()}
        turn = block % len(names)
        for name in names[turn:] + names[:turn]:
            op, out = ops_of[name], times[name]
            for key in keys[name]:
                started = timer()
                op(key)
                out.append(timer() - started)
    return times


def fill(side: Side, layout: Layout, target: int, deadline: float) -> dict[str, float]:
    """Grow both to ``target`` events, or as far as ``deadline`` (``time.monotonic()``) lets."""
    ek_time = raw_time = 0.0
    added = layout.events
    last_note = time.monotonic()
    for batch in layout.batches(target):
        started = time.perf_counter()
        rows = side.ek_fill(batch)
        ek_time += time.perf_counter() - started
        started = time.perf_counter()
        side.raw_fill(rows)
        raw_time += time.perf_counter() - started
        if time.monotonic() > deadline:
            say(f"  {side.name}: the fill budget ran out at {layout.events:,} events")
            break
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            say(f"  {side.name}: {layout.events:,} events (load {load()})")
    added = layout.events - added
    return {
        "added": added,
        "eventkeep_events_per_s": round(added / ek_time) if ek_time else 0,
        "raw_events_per_s": round(added / raw_time) if raw_time else 0,
        "seconds": round(ek_time + raw_time, 1),
    }


def appender(versions: dict[int, int], append: Callable[[int, int], None]) -> Op:
    """A single-event append with its expected version, tracking each stream's version."""

    def op(k: int) -> None:
        version = versions.get(k, STREAM_EVENTS)
        append(k, version)
        versions[k] = version + 1

    return op


def measure_size(
    side: Side, layout: Layout, ref: tuple[Side, Layout] | None, appends: int, reads: int
) -> dict[str, Any]:
    """Appends and reads of eventkeep and its floor at this size, and (``ref``) of the
    smallest size's pair in the same blocks: the growth ratios come from one run."""
    rng = random.Random(layout.events)
    result: dict[str, Any] = {"events": layout.events, "load_before": load()}
    pairs = [("", side, layout)] + ([("ref-", *ref)] if ref is not None else [])
    append_groups: list[tuple[Callable[[], int], dict[str, Op]]] = []
    read_groups: list[tuple[Callable[[], int], dict[str, Op]]] = []
    for prefix, s, lay in pairs:
        for who in ("ek", "raw"):
            lay.versions.setdefault(who, {})
        append_groups.append(
            (
                lambda lay=lay: lay.appendable(rng),
                {
                    f"{prefix}ek": appender(lay.versions["ek"], s.ek_append),
                    f"{prefix}raw": appender(lay.versions["raw"], s.raw_append),
                },
            )
        )
        read_groups.append(
            (
                lambda lay=lay: lay.readable(rng),
                {f"{prefix}ek": s.ek_read, f"{prefix}raw": s.raw_read},
            )
        )
    for what, groups, count in (("append", append_groups, appends), ("read", read_groups, reads)):
        times = interleaved(count, groups)
        result[what] = {"eventkeep": percentiles(times["ek"]), "raw": percentiles(times["raw"])}
        if ref is not None:
            result[what]["ref"] = {
                "events": ref[1].events,
                "eventkeep": percentiles(times["ref-ek"]),
                "raw": percentiles(times["ref-raw"]),
            }
    ek_bytes, raw_bytes = side.sizes()
    total = layout.events + sum(v - STREAM_EVENTS for v in layout.versions["ek"].values())
    result["bytes_per_event"] = {
        "eventkeep": round(ek_bytes / total, 1),
        "raw": round(raw_bytes / total, 1),
        "ratio": round(ek_bytes / raw_bytes, 2),
    }
    columns = side.columns()
    if columns:
        result["column_bytes"] = columns
    server = plan_sample(pairs, rng, PLAN_SAMPLES)
    if server:
        result["read_server"] = server
    plans = side.explain(layout.readable(rng))
    if plans:
        result["explain"] = plans
    result["load_after"] = load()
    return result


def plan_sample(
    pairs: list[tuple[str, Side, Layout]], rng: random.Random, count: int
) -> dict[str, dict[str, float]]:
    """The stream read's server-side cost, ``count`` random streams per subject, alternating
    (eventkeep, floor, and the reference pair): medians of execution time, mean buffers."""
    samplers: list[tuple[str, Layout, Callable[[int], tuple[float, int, int]]]] = []
    for prefix, side, lay in pairs:
        for who, sample in side.plan_samplers().items():
            samplers.append((f"{prefix}{who}", lay, sample))
    if not samplers:
        return {}
    found: dict[str, list[tuple[float, int, int]]] = {name: [] for name, _, _ in samplers}
    for _ in range(count):
        keys = {id(lay): lay.readable(rng) for _, lay, _ in samplers}
        for name, lay, sample in samplers:
            found[name].append(sample(keys[id(lay)]))
    return {
        name: {
            "exec_us": round(statistics.median(r[0] for r in rows) * 1000, 1),
            "hit": round(statistics.fmean(r[1] for r in rows), 1),
            "read": round(statistics.fmean(r[2] for r in rows), 1),
        }
        for name, rows in found.items()
    }


def catch_up(side: Side) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": load()}
    for who, run in (("raw", side.raw_catch_up), ("eventkeep", side.ek_catch_up)):
        started = time.perf_counter()
        seen = run()
        took = time.perf_counter() - started
        out[who] = {"events": seen, "seconds": round(took, 1), "events_per_s": round(seen / took)}
    out["load_after"] = load()
    return out


def open_side(name: str, folder: Path, server: Any) -> Side:
    """A fresh eventkeep store and floor: files in ``folder``, or two new databases."""
    if name == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return SqliteSide(folder)
    import psycopg

    names = [f"growth_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("ek", "raw")]
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        for db in names:
            conn.execute(f"CREATE DATABASE {db}")
    base = server.admin_url.rsplit("/", 1)[0]
    return PostgresSide(f"{base}/{names[0]}", f"{base}/{names[1]}")


def run_backend(
    name: str, sizes: list[int], appends: int, reads: int, folder: Path, server: Any, budget: float
) -> dict[str, Any]:
    """Grow a pair (eventkeep, floor) through ``sizes``; measure each size beside a second pair
    that stays at the smallest size (the reference the growth ratios divide by)."""
    out: dict[str, Any] = {
        "sizes": [],
        "fill_budget_s": budget,
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": [round(x, 2) for x in os.getloadavg()],
    }
    ref_layout, layout = Layout(), Layout()
    ref_side = open_side(name, folder / "reference", server)
    side = open_side(name, folder / "growing", server)
    deadline = time.monotonic() + budget
    try:
        fill(ref_side, ref_layout, sizes[0], math.inf)
        ref_side.settle()
        for size in sizes:
            if time.monotonic() > deadline:
                out["not_reached"] = size
                break
            say(f"{name}: filling to {size:,} events (load {load()})")
            filled = fill(side, layout, size, deadline)
            out["settle"] = side.settle()
            say(f"{name}: filled {filled}; measuring at {layout.events:,} (load {load()})")
            measured = measure_size(side, layout, (ref_side, ref_layout), appends, reads)
            measured["fill"] = filled
            out["sizes"].append(measured)
            say(f"{name}: {json.dumps({k: v for k, v in measured.items() if k != 'explain'})}")
            if layout.events < size:
                out["not_reached"] = size
                break
        say(f"{name}: catch-up of {layout.events:,} events (load {load()})")
        out["catch_up"] = catch_up(side)
        say(f"{name}: catch-up {out['catch_up']}")
    finally:
        side.close()
        ref_side.close()
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


# -- the report ---------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Growth: eventkeep beside the raw floor as the log grows",
        "",
        f"On {results['machine']}: `python -m benchmarks.growth` (see its docstring and "
        "benchmarks/README.md). The events: streams of 10 events (interleaved: a stream's "
        "events are appended one per round, 1,000 streams per round), 1 stream in 1,000 of "
        "500; data 200-400 bytes of JSON, metadata about 90 bytes, 1 event in 5 tagged.",
        "Latencies in microseconds, operations interleaved in rotating blocks of "
        f"{BLOCK} between the subjects.",
        "",
    ]
    for name, backend in results["backends"].items():
        sizes = backend["sizes"]
        lines += [
            f"## {name}",
            "",
            f"Run of {backend['started']}; load average {backend['load_start']} at the start, "
            f"{backend['load_end']} at the end. Before measuring at each size: "
            f"{backend['settle']}.",
            "",
        ]
        if "not_reached" in backend:
            lines += [
                f"**{backend['not_reached']:,} events not reached**: the fill budget "
                f"({backend['fill_budget_s']:.0f} s of bulk appends) ran out at "
                f"{sizes[-1]['events']:,} events; nothing is extrapolated.",
                "",
            ]
        lines += [
            "| events | load | append p50 ek / raw | append p99 ek / raw | read p50 ek / raw "
            "| read p99 ek / raw | growth: append p50 ek / raw | append p99 ek / raw "
            "| read p50 ek / raw | read p99 ek / raw | bytes/event ek / raw (ratio) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in sizes:
            a, r, b = s["append"], s["read"], s["bytes_per_event"]

            def grown(m: dict[str, Any], q: str) -> str:
                ref = m["ref"]
                return (
                    f"{_ratio(m['eventkeep'][q], ref['eventkeep'][q])} / "
                    f"{_ratio(m['raw'][q], ref['raw'][q])}"
                )

            lines.append(
                f"| {s['events']:,} | {s['load_before']}-{s['load_after']} "
                f"| {a['eventkeep']['p50_us']:,.0f} / {a['raw']['p50_us']:,.0f} "
                f"| {a['eventkeep']['p99_us']:,.0f} / {a['raw']['p99_us']:,.0f} "
                f"| {r['eventkeep']['p50_us']:,.0f} / {r['raw']['p50_us']:,.0f} "
                f"| {r['eventkeep']['p99_us']:,.0f} / {r['raw']['p99_us']:,.0f} "
                f"| {grown(a, 'p50_us')} | {grown(a, 'p99_us')} "
                f"| {grown(r, 'p50_us')} | {grown(r, 'p99_us')} "
                f"| {b['eventkeep']:,.0f} / {b['raw']:,.0f} ({b['ratio']:.2f}x) |"
            )
        lines += [
            "",
            "Growth = the figure at this size / the same figure of a second pair (eventkeep and "
            f"floor) kept at {sizes[0]['append']['ref']['events']:,} events, measured in the same "
            "rotating blocks (so the machine's load hits both alike; the first row shows the "
            "noise between two equal stores). Target: at most 1.20.",
            "",
        ]
        for s in sizes:
            if "column_bytes" in s:
                cb = s["column_bytes"]
                lines += [
                    f"At {s['events']:,} events an eventkeep row averages {cb['row']:,.0f} bytes: "
                    f"`data_bytes` {cb['data_bytes']:,.0f}, generated `data` jsonb "
                    f"{cb['data']:,.0f}, `metadata_bytes` {cb['metadata_bytes']:,.0f}, generated "
                    f"`metadata` jsonb {cb['metadata']:,.0f}, `hash` {cb['hash']:,.0f}, `tags` "
                    f"{cb['tags']:,.0f} (`pg_column_size`, a 1% sample).",
                    "",
                ]
        served = [s for s in sizes if "read_server" in s]
        if served:
            lines += [
                "The stream read on the server (`EXPLAIN (ANALYZE, BUFFERS)` of "
                f"{PLAN_SAMPLES} random 10-event streams per subject, alternating; median "
                "execution time, mean shared buffers hit / read):",
                "",
                "| events | eventkeep | floor | eventkeep, small pair | floor, small pair |",
                "|---:|---:|---:|---:|---:|",
            ]
            for s in served:
                cells = [
                    f"{v['exec_us']:,.0f} µs, {v['hit']:.1f} / {v['read']:.1f}"
                    for v in (s["read_server"][n] for n in ("ek", "raw", "ref-ek", "ref-raw"))
                ]
                lines.append(f"| {s['events']:,} | " + " | ".join(cells) + " |")
            lines.append("")
        c = backend["catch_up"]
        lines += [
            "",
            f"Catch-up of the whole log at {c['eventkeep']['events']:,} events (data and "
            f"metadata decoded; load {c['load_before']}-{c['load_after']}): eventkeep "
            f"{c['eventkeep']['events_per_s']:,} events/s, raw floor "
            f"{c['raw']['events_per_s']:,} events/s "
            f"({_ratio(c['eventkeep']['events_per_s'], c['raw']['events_per_s'])}).",
            "",
            "Bulk fill (untimed; eventkeep `append_many`, 1,000 streams per call, one event "
            "of each 10-event stream per call; the floor one `COPY` (PostgreSQL) or "
            "`executemany` (SQLite) per 1,000 streams): "
            + "; ".join(
                f"to {s['events']:,}: eventkeep {s['fill']['eventkeep_events_per_s']:,}/s, "
                f"floor {s['fill']['raw_events_per_s']:,}/s"
                for s in sizes
            )
            + ".",
            "",
        ]
        for s in sizes:
            if "explain" in s:
                lines += [
                    f"<details><summary>EXPLAIN (ANALYZE, BUFFERS) of a 10-event stream "
                    f"read at {s['events']:,} events</summary>",
                    "",
                ]
                for who, plan in s["explain"].items():
                    lines += [f"{who}:", "", "```", plan, "```", ""]
                lines += ["</details>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument(
        "--budget",
        type=float,
        default=900.0,
        help="seconds of filling per backend; past it, the sizes not reached are skipped",
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="PostgreSQL: no VACUUM ANALYZE after each fill (a CHECKPOINT only)",
    )
    parser.add_argument(
        "--render", type=Path, nargs="+", help="write growth.md from these growth.json files"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few operations")
    parser.add_argument("--output", type=Path, default=None, help="folder for growth.md/json")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the SQLite files here (default: a temporary folder, deleted)",
    )
    args = parser.parse_args(argv)
    if args.render:
        merged: dict[str, Any] = {"backends": {}}
        for path in args.render:
            loaded = json.loads(path.read_text())
            merged.update({k: v for k, v in loaded.items() if k != "backends"})
            merged["backends"].update(loaded["backends"])
        output = args.output or RESULTS
        (output / "growth.md").write_text(markdown(merged) + "\n")
        (output / "growth.json").write_text(json.dumps(merged, indent=2) + "\n")
        say(f"written to {output}")
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.smoke:
        sizes, args.appends, args.reads = list(SMOKE_SIZES), 100, 200
    output = args.output or (Path(tempfile.mkdtemp()) if args.smoke else RESULTS)
    PostgresSide.vacuum = not args.no_vacuum
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores",
        "load_start": [round(x, 2) for x in os.getloadavg()],
        "backends": {},
    }
    server = None
    folder = args.keep or Path(tempfile.mkdtemp(prefix="eventkeep-growth-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.backends.split(","):
            if name == "postgres" and server is None:
                from benchmarks.pg import Server

                server = Server()
                results["postgres"] = {
                    "version": server.version,
                    "settings": server.settings,
                    "server": server.description,
                }
            results["backends"][name] = run_backend(
                name, sizes, args.appends, args.reads, folder, server, args.budget
            )
    finally:
        if server is not None:
            server.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    output.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (output / "growth.md").write_text(text + "\n")
    (output / "growth.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    say(f"written to {output}")


if __name__ == "__main__":
    main()
