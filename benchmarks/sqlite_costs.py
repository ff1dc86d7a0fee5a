"""Where a SQLite one-event append's time goes: eventkeep's statements alone against the whole
append and against the raw floor (not a test).

    python -m benchmarks.sqlite_costs                  # 20 turns of 200 appends per variant
    python -m benchmarks.sqlite_costs --turns 40 --ops 100

Four variants, each on its own database file (WAL, ``synchronous=FULL``: one fsync per commit),
taking turns of ``--ops`` appends in one process, the order rotated each turn, so that all four
see the same machine (its speed drifts by tens of percent over seconds):

- ``repository create + save``: the harness's ``create`` workload (``systems/ek.py``): a new
  bank account, opened and saved through ``Repository``;
- ``store.append``: one event appended to a new stream with ``expected_version=0``;
- ``eventkeep's statements alone``: the statements ``store.append`` runs for that append, in
  its order, with its parameters made beforehand (``BEGIN IMMEDIATE``, ``PRAGMA
  data_version``, the head read, the insert with the append-only triggers, the head upsert with
  its trigger, ``COMMIT``): what the append costs with none of eventkeep's Python;
- ``raw floor``: ``systems/raw.py``'s create, one autocommit ``INSERT`` of the same row
  (event id, metadata, time, schema version) into a table with the same unique keys.

Reported per append: wall time, this process's CPU, and each variant's share of the raw
floor's rate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from benchmarks.systems.base import Target, reference_for
from benchmarks.systems.ek import EventkeepSubject
from benchmarks.systems.raw import RawSQLiteSubject

_DATA = {"amount": "10.00", "currency": "EUR", "reference": "x" * 200}


def statements_alone(store: Any) -> Callable[[int], None]:
    """``store.append``'s statements for a one-event append to a new stream, on the store's
    own connection, with the row made here (the store's id, hash and clock functions)."""
    from eventkeep.backends.sqlite import sql
    from eventkeep.store.codec import PreparedEvent, new_event_id
    from eventkeep.store.hashing import chain_events
    from eventkeep.store.planner import NEW_STREAM

    conn = store._conn
    insert = sql.insert_events(1, at=False, tagged=False)
    data = eventkeep.RawEvent("bank.Deposited", _DATA)
    encoded = store.codec.prepare(data, None).data

    def op(n: int) -> None:
        stream = f"alone-{n}"
        event = PreparedEvent(new_event_id(), "bank.Deposited", 1, encoded, b"{}")
        now = time.time_ns() // 1000
        (digest,) = chain_events(NEW_STREAM.last_hash, stream, 0, [event], now)
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        cur.execute(sql.DATA_VERSION).fetchone()
        cur.execute(sql.STREAM_HEAD, (stream,)).fetchone()
        row = (stream, 1, event.event_id, event.type, 1, now, encoded, b"{}", digest)
        cur.execute(insert, row)
        cur.execute(sql.UPSERT_STREAM, (stream, 1, cur.lastrowid, digest))
        cur.execute("COMMIT")

    return op


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20, help="turns per variant")
    parser.add_argument("--ops", type=int, default=200, help="appends per turn")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="eventkeep-sqlite-costs-"))
    reference = reference_for(256)
    with contextlib.ExitStack() as stack:
        repository = EventkeepSubject(Target("sqlite", path=str(folder / "repository.db")))
        stack.callback(repository.close)
        appending = stack.enter_context(eventkeep.open_store(f"sqlite:///{folder / 'store.db'}"))
        alone = stack.enter_context(eventkeep.open_store(f"sqlite:///{folder / 'alone.db'}"))
        alone.append("warm-up", [eventkeep.RawEvent("bank.Deposited", _DATA)])  # its schema
        raw = RawSQLiteSubject(Target("sqlite", path=str(folder / "raw.db")))
        stack.callback(raw.close)
        event = eventkeep.RawEvent("bank.Deposited", _DATA)

        def append(n: int) -> None:
            appending.append(f"store-{n}", [event], expected_version=0)

        variants: dict[str, Callable[[int], None]] = {
            "repository create + save": lambda n: repository.create(f"acc{n}", reference),
            "store.append": append,
            "eventkeep's statements alone": statements_alone(alone),
            "raw floor (one INSERT, one commit)": lambda n: raw.create(f"acc{n}", reference),
        }
        wall = {name: [] for name in variants}  # type: dict[str, list[float]]
        cpu = {name: [] for name in variants}  # type: dict[str, list[float]]
        names = list(variants)
        for turn in range(args.turns):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                op, first = variants[name], turn * args.ops
                started, used = time.perf_counter(), time.process_time()
                for n in range(first, first + args.ops):
                    op(n)
                wall[name].append((time.perf_counter() - started) / args.ops * 1e6)
                cpu[name].append((time.process_time() - used) / args.ops * 1e6)
    floor = statistics.median(wall["raw floor (one INSERT, one commit)"])
    print(
        f"## One-event append on SQLite (WAL, synchronous=FULL), medians of {args.turns} turns "
        f"of {args.ops} appends per variant; load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| | wall µs per append | client CPU µs | share of the raw floor's rate |")
    print("|---|---:|---:|---:|")
    for name in variants:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"| {name} | {w:.0f} | {c:.0f} | {floor / w:.0%} |")


if __name__ == "__main__":
    main()
