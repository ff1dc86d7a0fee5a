"""Where a single-event append's pages come from as a PostgreSQL store grows (not a test).

    python -m benchmarks.growth_pages                 # 10,000 against 1,000,000 events
    python -m benchmarks.growth_pages --large 3000000 --rounds 3 --appends 1000

Two eventkeep stores and two raw floors (``growth_stores.py``'s events and layout) are filled
to a small and a large size; then, for each, ``--appends`` single-event appends with their
expected versions, and the blocks each table (its indexes and TOAST included) took from
``shared_buffers`` (hit) and from outside it (read), per append, from ``pg_statio_all_tables``.
A backend reports its statistics when it ends, so every side's connections are closed after
its appends and opened again before the next. ``growth.py`` says how much slower an append is
at the large size; this says which table's pages it now reads from outside the buffers.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import psycopg

import eventkeep
from benchmarks.growth import appender, open_side
from benchmarks.growth_stores import Layout, PostgresSide
from benchmarks.pg import Server

_BLOCKS = (
    "SELECT relname, "
    "coalesce(heap_blks_hit, 0) + coalesce(idx_blks_hit, 0) + coalesce(toast_blks_hit, 0), "
    "coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0) + coalesce(toast_blks_read, 0) "
    "FROM pg_statio_all_tables "
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
)


def blocks(url: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {str(r[0]): (int(r[1]), int(r[2])) for r in conn.execute(_BLOCKS)}


def reconnect(side: PostgresSide, who: str) -> None:
    """End the side's backends (so that they report their statistics) and connect anew."""
    if who == "eventkeep":
        side.store.close()
        side.store = eventkeep.open_store(side.ek_url)
    else:
        side.raw.close()
        side.raw = psycopg.connect(side.raw_url, autocommit=True)
    time.sleep(0.3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    server = Server()
    try:
        sides: dict[int, tuple[Any, Layout]] = {}
        for size in (10_000, args.large):
            side, layout = open_side("postgres", Path("/tmp"), server), Layout()
            for batch in layout.batches(size):
                side.raw_fill(side.ek_fill(batch))
            side.settle()
            sides[size] = (side, layout)
            print(f"filled {size:,} events", flush=True)
        for n in range(args.rounds):
            for size, (side, layout) in sides.items():
                for who, url, key in (
                    ("eventkeep", side.ek_url, "ek"),
                    ("raw", side.raw_url, "raw"),
                ):
                    reconnect(side, who)
                    op = appender(
                        layout.versions[key], side.ek_append if key == "ek" else side.raw_append
                    )
                    rng = random.Random(n * 7 + size)
                    before = blocks(url)
                    for _ in range(args.appends):
                        op(layout.appendable(rng))
                    reconnect(side, who)
                    after = blocks(url)
                    cells = []
                    for table, (hit, read) in sorted(after.items()):
                        hit -= before.get(table, (0, 0))[0]
                        read -= before.get(table, (0, 0))[1]
                        if hit or read:
                            per = args.appends
                            cells.append(f"{table} hit {hit / per:.1f} read {read / per:.2f}")
                    print(f"round {n} {size:>10,} {who:<9} " + "; ".join(cells), flush=True)
        for side, _ in sides.values():
            side.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()
