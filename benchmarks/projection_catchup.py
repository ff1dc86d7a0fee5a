"""Benchmark: catch-up throughput of a trivial in-memory projection (not a test).

    python benchmarks/projection_catchup.py [--events 1000000] [--store URL] [--profile]
    python benchmarks/projection_catchup.py --postgres   # on a throwaway PostgreSQL cluster

Fills a fresh store with N small events (10 streams, 3 event types; reused if the file
already holds them), then times a Runner feeding a counting projection from position 0 until
it has caught up. The projection is external (at-least-once): its handler counts events by type
in a dict, and its checkpoint is saved once per batch. Goal on SQLite: >= 200,000 events/s.
``--postgres`` starts a throwaway cluster (``tests/pg_cluster.py``, fsync on) and removes it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import eventkeep
from eventkeep import RawEvent, StreamAppend
from eventkeep.projections import HandlerContext, Projection, Runner, handles


class CountByType(Projection):
    name = "bench.count_by_type"
    transactional = False
    batch_size = 1000

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @handles("A", "B", "C")
    def count(self, event: object, ctx: HandlerContext) -> None:
        self.counts[ctx._current().type] += 1


def fill(store: eventkeep.EventStore, total: int) -> None:
    have = store.head_position()
    chunk = 2000
    started = time.perf_counter()
    while have < total:
        size = min(chunk, total - have)
        appends = [
            StreamAppend(
                f"s-{stream}",
                [RawEvent("ABC"[(have + i) % 3], {"n": have + i}) for i in range(size // 10)],
            )
            for stream in range(10)
        ]
        store.append_many(appends)
        have = store.head_position()
    if time.perf_counter() - started > 1:
        print(f"filled {total:,} events in {time.perf_counter() - started:.1f}s", file=sys.stderr)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import pg_cluster

    cluster = pg_cluster.start_cluster(durable=True)
    try:
        yield cluster.url
    finally:
        cluster.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", default=None, help="default: a SQLite file in /tmp")
    parser.add_argument("--postgres", action="store_true", help="on a throwaway cluster")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(throwaway_postgres())
        else:
            url = args.store or f"sqlite:///{Path(tempfile.gettempdir()) / 'ek-bench-catchup.db'}"
        run(url, args.events, args.profile)


def run(url: str, events: int, profile: bool) -> None:
    with eventkeep.open_store(url) as store:
        fill(store, events)
        if store.url.startswith("postgresql:"):
            # What autovacuum does within a minute of a bulk load: without statistics the
            # planner reads read_all(types=...) pages through the type index and sorts
            # everything after the position, every page (about 20,000 events/s here).
            with store.transaction() as tx:
                tx.execute("ANALYZE events")
        with store.transaction() as tx:  # start from scratch on every run
            tx.delete_checkpoint(CountByType.name)
            tx.delete_record(CountByType.name)
        projection = CountByType()
        runner = Runner(store, [projection])
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        runner.run(until_caught_up=True)
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        handled = sum(projection.counts.values())
        print(
            f"{store.url}: caught up on {handled:,} events in {elapsed:.2f}s = "
            f"{handled / elapsed:,.0f} events/s"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


if __name__ == "__main__":
    main()
