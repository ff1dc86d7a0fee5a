"""How an append's rows go into SQLite: executemany against multi-row INSERTs (not a test).

    python -m benchmarks.sqlite_inserts                 # 100-row appends
    python -m benchmarks.sqlite_inserts --rows 10 --events 30000

Four ways to insert the same rows into eventkeep's own ``events`` table (its triggers and
indexes included), each in its own database file, alternating append by append in one process
so that all four see the same machine; the clock is this process's CPU time around the insert
(``BEGIN`` and ``COMMIT`` excluded, ``synchronous=NORMAL``):

- ``executemany``: one statement run once per row;
- ``executemany+savepoint``: the same inside ``SAVEPOINT``/``RELEASE`` (what an append needs to
  undo its own rows alone when several appends share a transaction);
- ``multi-row``: one ``INSERT ... VALUES (...), (...), ...`` of all the rows (atomic by itself);
- ``chunks+savepoint``: what ``backends/sqlite/writing.py`` does past 32 rows: chunks of 128, 64
  and 32 rows and one for the rest (``writing.chunk_sizes``), inside a savepoint.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from itertools import chain

import eventkeep
from eventkeep.backends.sqlite import sql
from eventkeep.backends.sqlite.writing import chunk_sizes

MODES = ("executemany", "executemany+savepoint", "multi-row", "chunks+savepoint")
DATA = b'{"amount":"10.00","currency":"EUR","reference":"ref-' + b"x" * 100 + b'"}'


def rows(stream: int, count: int) -> list[tuple[object, ...]]:
    stream_id, now = f"s-{stream}", 1_700_000_000_000_000
    return [
        (stream_id, v, os.urandom(16), "bank.Deposited", 1, now, DATA, b"{}", os.urandom(32))
        for v in range(1, count + 1)
    ]


def insert(mode: str, conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    one = sql.insert_events(1, at=False, tagged=False)
    if mode == "executemany":
        conn.executemany(one, batch)
    elif mode == "executemany+savepoint":
        conn.execute("SAVEPOINT s")
        conn.executemany(one, batch)
        conn.execute("RELEASE s")
    elif mode == "multi-row":
        conn.execute(sql.insert_events(len(batch), at=False, tagged=False), list(chain(*batch)))
    else:
        conn.execute("SAVEPOINT s")
        start = 0
        for size in chunk_sizes(len(batch), 1000):
            statement = sql.insert_events(size, at=False, tagged=False)
            conn.execute(statement, list(chain(*batch[start : start + size])))
            start += size
        conn.execute("RELEASE s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100, help="events per append")
    parser.add_argument("--events", type=int, default=60_000, help="events per way")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    conns = {}
    for n, mode in enumerate(MODES):
        path = f"{folder}/{n}.db"
        eventkeep.open_store(f"sqlite:///{path}").close()  # eventkeep's schema and triggers
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conns[mode] = conn
    spent = dict.fromkeys(MODES, 0.0)
    appends = max(1, args.events // args.rows)
    for stream in range(appends):
        batch = rows(stream, args.rows)
        for mode, conn in conns.items():
            conn.execute("BEGIN IMMEDIATE")
            started = time.process_time()
            insert(mode, conn, batch)
            spent[mode] += time.process_time() - started
            conn.execute("COMMIT")
    print(f"{appends} appends of {args.rows} rows; load average {os.getloadavg()[0]:.2f}")
    base = spent["executemany"]
    for mode in MODES:
        per_row = spent[mode] / (appends * args.rows) * 1e6
        print(f"  {mode:22s} {per_row:6.2f} us of CPU per row  ({spent[mode] / base:.2f}x)")


if __name__ == "__main__":
    main()
