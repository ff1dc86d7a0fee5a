"""Where a PostgreSQL append's cost goes: server CPU, client CPU, WAL and wall time per append.

Two parts, side by side in one run, on a throwaway durable cluster (``pg.py``) or
``$EVENTKEEP_BENCH_POSTGRES_URL``:

1. **Store vs floor.** eventkeep's single-event append with an expected version (a new stream
   each time, through ``store.append``; with group commit, the default, and without) against
   the raw floor (one autocommit ``INSERT`` of the
   same row into a table with the same unique keys, ``systems/raw.py``). For each: the server's
   CPU per append (user + system time of the server backends serving this client, read from
   ``/proc``: CPU time, not wall time, so another busy process on the machine inflates it much
   less than it inflates latency), this process's CPU per append, WAL bytes per append
   (``pg_current_wal_insert_lsn``) and the wall time.
2. **Attribution** (``--attribute``): the append statement itself (``sql.APPEND_EVENT``, executed
   prepared, autocommit) in schemas where one piece of the schema is taken away at a time
   (cumulatively): what each piece costs the server.

Rounds alternate between the variants; medians are reported. Server CPU is read with the
kernel's clock tick (10 ms): use enough appends per round (``--ops``) that a round takes
seconds. Needs a server on this machine (``/proc`` of its backends), as the throwaway one is.

::

    python -m benchmarks.pg_costs                     # part 1
    python -m benchmarks.pg_costs --attribute         # parts 1 and 2
    python -m benchmarks.pg_costs --ops 3000 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from eventkeep import RawEvent

_TICK = os.sysconf("SC_CLK_TCK")
_DATA = {"amount": "10.00", "currency": "EUR", "reference": "x" * 200}
_DATA_BYTES = b'{"amount":"10.00","currency":"EUR","reference":"' + b"x" * 200 + b'"}'
# Bytes of WAL inserted (cluster-wide: run nothing else on the server meanwhile). pg_stat_wal's
# counters lag: backends report them at most once a second.
_WAL = "SELECT pg_current_wal_insert_lsn()"
_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process on this machine, in seconds (clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class Sample(dict[str, float]):
    """Per-append figures of one round: server_us, client_us, wall_us, wal_bytes."""


def measure(
    observer: Any, op: Callable[[int], None], start: int, count: int, pids: Callable[[], list[int]]
) -> Sample:
    """Run ``op`` ``count`` times; what it cost, per call."""
    before_pids = pids()
    server_before = {pid: cpu_seconds(pid) for pid in before_pids}
    wal_before = observer.execute(_WAL).fetchone()
    wall, client = time.perf_counter(), time.process_time()
    for n in range(start, start + count):
        op(n)
    wall, client = time.perf_counter() - wall, time.process_time() - client
    wal_after = observer.execute(_WAL).fetchone()
    wal_bytes = observer.execute(
        "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (wal_after[0], wal_before[0])
    ).fetchone()[0]
    server = sum(cpu_seconds(pid) - server_before.get(pid, 0.0) for pid in pids())
    return Sample(
        server_us=server / count * 1e6,
        client_us=client / count * 1e6,
        wall_us=wall / count * 1e6,
        wal_bytes=float(wal_bytes) / count,
    )


def medians(samples: list[Sample]) -> Sample:
    return Sample({key: statistics.median(s[key] for s in samples) for key in samples[0]})


# -- 1: store vs floor ------------------------------------------------------------------------


def eventkeep_append(store: eventkeep.EventStore, run: str) -> Callable[[int], None]:
    def op(n: int) -> None:
        store.append(f"acc-{run}-{n}", [RawEvent("bank.Deposited", _DATA)], expected_version=0)

    return op


def statement_alone(store: Any, conn: Any, run: str) -> Callable[[int], None]:
    """The store's own one-round-trip insert statement (``plans._insert``, as ``store.append``
    sends it for a new stream once the server's clock is known), its row made here with the
    store's own id, hash and clock: what the append costs with none of eventkeep's Python
    around the statement (validation, encoding, the plan, the pool, the results)."""
    from eventkeep.backends.postgres import plans, writer
    from eventkeep.store.codec import PreparedEvent, new_event_id
    from eventkeep.store.hashing import chain_events
    from eventkeep.store.planner import NEW_STREAM, PlannedRow

    known = store._known

    def op(n: int) -> None:
        stream, now = f"acc-{run}-{n}", known.now_us()
        event = PreparedEvent(new_event_id(), "bank.Deposited", 1, _DATA_BYTES, b"{}")
        (digest,) = chain_events(NEW_STREAM.last_hash, stream, 0, [event], now)
        row = PlannedRow(stream, 1, event.event_id, event.type, 1, now, _DATA_BYTES, b"{}", digest)
        writer.run(conn, plans._send([row], not_before=True))

    return op


_RAW_TABLE = (
    "CREATE TABLE raw_events (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    'stream_id text COLLATE "C" NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL UNIQUE, '
    'type text COLLATE "C" NOT NULL, schema_version integer NOT NULL, '
    "recorded_at timestamptz NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, "
    "UNIQUE (stream_id, version))"
)
_RAW_INSERT = (
    "INSERT INTO raw_events (stream_id, version, event_id, type, schema_version, recorded_at, "
    "data, metadata) VALUES (%s, %s, %s, %s, %s, clock_timestamp(), %s, %s)"
)


def raw_append(conn: Any, run: str) -> Callable[[int], None]:
    from psycopg.types.json import Jsonb

    def op(n: int) -> None:
        conn.execute(
            _RAW_INSERT,
            (f"acc-{run}-{n}", 1, uuid.uuid4(), "bank.Deposited", 1, Jsonb(_DATA), Jsonb({})),
        )

    return op


def store_vs_floor(url: str, ops: int, rounds: int) -> list[str]:
    import psycopg

    with contextlib.ExitStack() as stack:
        observer = stack.enter_context(psycopg.connect(url, autocommit=True))
        store = stack.enter_context(eventkeep.open_store(url))
        synchronous = stack.enter_context(
            eventkeep.open_store(url, schema="bench_sync", group_commit=False)
        )
        alone = stack.enter_context(store._db.connect())  # configured as the store's sessions
        raw = stack.enter_context(psycopg.connect(url, autocommit=True))
        raw.execute(_RAW_TABLE)
        raw.execute("CREATE INDEX ON raw_events (type, position)")
        raw_pid = raw.execute("SELECT pg_backend_pid()").fetchone()[0]

        def all_backends() -> list[int]:
            return [row[0] for row in observer.execute(_BACKENDS)]

        variants = {
            "eventkeep store.append": (eventkeep_append(store, "ek"), all_backends),
            "eventkeep store.append, group_commit=False": (
                eventkeep_append(synchronous, "sync"),
                all_backends,
            ),
            "eventkeep's insert statement alone": (
                statement_alone(store, alone, "alone"),
                all_backends,
            ),
            "raw INSERT (floor)": (raw_append(raw, "raw"), lambda: [raw_pid]),
        }
        for op, _ in variants.values():  # warm-up: pool, prepared statements, caches
            for n in range(10_000_000, 10_000_200):
                op(n)
        samples: dict[str, list[Sample]] = {name: [] for name in variants}
        for round_ in range(rounds):
            for name, (op, pids) in variants.items():
                samples[name].append(measure(observer, op, round_ * ops, ops, pids))
            say(f"  round {round_ + 1}/{rounds} done")
    result = {name: medians(values) for name, values in samples.items()}
    ek, floor = result["eventkeep store.append"], result["raw INSERT (floor)"]
    alone = result["eventkeep's insert statement alone"]
    lines = [
        "## One-event append: eventkeep vs the raw insert (per append, medians of "
        f"{rounds} alternating rounds of {ops})",
        "",
        "| | server CPU µs | client CPU µs | WAL bytes | wall µs |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in result.items():
        lines.append(
            f"| {name} | {s['server_us']:.0f} | {s['client_us']:.0f} | {s['wal_bytes']:.0f} "
            f"| {s['wall_us']:.0f} |"
        )
    for name, over, under in (
        ("eventkeep / floor", ek, floor),
        ("the statement alone / floor", alone, floor),
        ("eventkeep / the statement alone", ek, alone),
    ):
        ratios = (
            over[key] / under[key] for key in ("server_us", "client_us", "wal_bytes", "wall_us")
        )
        lines.append(f"| {name} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return lines


# -- 2: attribution ---------------------------------------------------------------------------

PIECES: list[tuple[str, list[str]]] = [
    ("the schema as shipped", []),
    ("- the streams' index (events_stream_starts)", ["DROP INDEX events_stream_starts"]),
    ("- events_by_category index", ["DROP INDEX events_by_category"]),
    ("- pg_notify", []),
    ("- numbering function (a sequence instead)", ["CREATE SEQUENCE bench_positions"]),
]


def statement_for(step: int) -> str:
    from eventkeep.backends.postgres import sql

    statement = sql.APPEND_EVENT
    if step >= 3:
        statement = statement.replace(
            ", pg_notify('eventkeep_' || current_schema(), max(position)::text)", ""
        )
    if step >= 4:
        statement = statement.replace(
            "(SELECT eventkeep_append_position(ARRAY[%s::text], ARRAY[%s::bigint])) + 1",
            "nextval('bench_positions')",
        )
    return statement


def attribution(url: str, ops: int, rounds: int) -> list[str]:
    import psycopg

    with contextlib.ExitStack() as stack:
        observer = stack.enter_context(psycopg.connect(url, autocommit=True))
        conns, ops_by_name = [], {}
        for step, (name, _) in enumerate(PIECES):
            schema = f"bench_step_{step}"
            eventkeep.open_store(url, schema=schema).close()
            conn = stack.enter_context(psycopg.connect(url, autocommit=True))
            conn.execute(f"SET search_path TO {schema}")
            for _, ddl in PIECES[: step + 1]:
                for statement in ddl:
                    conn.execute(statement)
            conns.append(conn)
            ops_by_name[name] = (_statement_op(conn, statement_for(step), step), conn)
        for op, _ in ops_by_name.values():
            for n in range(10_000_000, 10_000_100):
                op(n)
        samples: dict[str, list[Sample]] = {name: [] for name in ops_by_name}
        for round_ in range(rounds):
            for name, (op, conn) in ops_by_name.items():
                pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                samples[name].append(measure(observer, op, round_ * ops, ops, lambda p=pid: [p]))
            say(f"  attribution round {round_ + 1}/{rounds} done")
    lines = [
        "",
        "## What each piece of the schema costs the server (the append statement alone, "
        "pieces taken away cumulatively)",
        "",
        "| schema | server CPU µs per append | WAL bytes | step saves µs |",
        "|---|---:|---:|---:|",
    ]
    previous = None
    for name, values in samples.items():
        s = medians(values)
        saved = "" if previous is None else f"{previous - s['server_us']:.0f}"
        lines.append(f"| {name} | {s['server_us']:.0f} | {s['wal_bytes']:.0f} | {saved} |")
        previous = s["server_us"]
    return lines


def _statement_op(conn: Any, statement: str, step: int) -> Callable[[int], None]:
    def op(n: int) -> None:
        stream = f"s-{step}-{n}"
        digest = hashlib.sha256(stream.encode()).digest()
        now = datetime.datetime.now(datetime.UTC)
        numbering = (stream, 1) if step < 4 else ()  # the numbering function's streams
        params: tuple[Any, ...] = (
            *numbering,
            stream,
            1,
            uuid.uuid4(),
            "bank.Deposited",
            1,
            now,
            _DATA_BYTES,
            b"{}",
            digest,
            None,
        )
        conn.execute(statement, params, prepare=True)

    return op


@contextlib.contextmanager
def server_url() -> Iterator[tuple[str, str]]:
    from benchmarks.pg import Server

    server = Server()
    try:
        with server.database() as target:
            yield target.pg_url, f"PostgreSQL {server.version}, {server.description}"
    finally:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=2000, help="appends per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attribute", action="store_true", help="also attribute server CPU")
    args = parser.parse_args(argv)
    with server_url() as (url, description):
        say(f"{description}; load average {os.getloadavg()[0]:.1f}")
        lines = [f"Server: {description}. Load average at the start: {os.getloadavg()[0]:.1f}.", ""]
        lines += store_vs_floor(url, args.ops, args.rounds)
        if args.attribute:
            lines += attribution(url, args.ops, args.rounds)
    lines += ["", f"Load average at the end: {os.getloadavg()[0]:.1f}."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
