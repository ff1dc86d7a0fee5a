"""The asyncio API against the synchronous one, side by side in one run (not a test).

    python -m benchmarks.aio                    # every comparison, 7 alternations, medians
    python -m benchmarks.aio --repeats 5 --appends 4000
    python -m benchmarks.aio --quick            # a smoke run
    python -m benchmarks.aio --profile          # cProfile of the async append run

Comparisons (each pair runs alternately, sync then async, ``--repeats`` times; the median of
each side and their ratio are printed):

1. **Concurrent appends, PostgreSQL**: ``--appends`` one-event appends, each to a stream of its
   own (expected version NO_STREAM): 8 threads on the synchronous store against 100 tasks on
   ``eventkeep.aio`` (one process each time; the same pool options on both sides).
2. **Reads** (SQLite and PostgreSQL): ``read_stream`` of a 1,000-event stream five times and
   ``read_all`` of the whole log (``--log`` events), one reader, every event iterated (``for``
   against ``async for``); each side's store is opened once, before the runs (warm
   connections, a service's steady state); the same reads with each event's ``.event`` taken
   (its data decoded: what the main benchmark's read workload does with every event); and the
   same reads through ``Events.pages()``.
3. **Catch-up** (SQLite and PostgreSQL): a subscription from position 0 to the head, in
   batches of 500 (``Subscription.batches`` against ``AsyncSubscription.batches``).

PostgreSQL is a throwaway durable cluster (``benchmarks/pg.py``; fsync and synchronous commit
on) or ``$EVENTKEEP_BENCH_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import eventkeep
import eventkeep.aio
from eventkeep import NO_STREAM, RawEvent, StreamAppend
from eventkeep.projections import Subscription

Timing = Callable[[], float]

POOL = {"pool_max_size": 20}
"""Pool options used on both sides (the async side's 100 tasks share the same pool)."""


def _event(n: int) -> RawEvent:
    return RawEvent("bench.Happened", {"n": n, "note": "x" * 40})


# -- 1. concurrent appends ---------------------------------------------------------------------


def sync_appends(url: str, total: int, threads: int = 8) -> float:
    """Seconds for ``total`` one-event appends from ``threads`` threads."""
    store = eventkeep.open_store(url, **POOL)
    try:
        run = uuid.uuid4().hex[:8]
        barrier = threading.Barrier(threads + 1)

        def work(worker: int) -> None:
            barrier.wait()
            for n in range(worker, total, threads):
                store.append(f"s-{run}-{n}", [_event(n)], NO_STREAM)

        pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for thread in pool:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in pool:
            thread.join()
        return time.perf_counter() - start
    finally:
        store.close()


def async_appends(url: str, total: int, tasks: int = 100) -> float:
    """Seconds for ``total`` one-event appends from ``tasks`` concurrent tasks."""

    async def main() -> float:
        store = await eventkeep.aio.open_store(url, **POOL)
        try:
            run = uuid.uuid4().hex[:8]

            async def work(worker: int) -> None:
                for n in range(worker, total, tasks):
                    await store.append(f"a-{run}-{n}", [_event(n)], NO_STREAM)

            start = time.perf_counter()
            await asyncio.gather(*(work(t) for t in range(tasks)))
            return time.perf_counter() - start
        finally:
            await store.close()

    return asyncio.run(main())


# -- 2. reads and 3. catch-up --------------------------------------------------------------------


def fill(url: str, log: int) -> None:
    store = eventkeep.open_store(url)
    try:
        store.append("long-stream", [_event(n) for n in range(1000)], NO_STREAM)
        for first in range(1000, log, 1000):
            store.append_many(
                [
                    StreamAppend(f"fill-{first + k}", [_event(first + k + i) for i in range(10)])
                    for k in range(0, 1000, 10)
                ]
            )
    finally:
        store.close()


class Stores:
    """One synchronous and one async store on ``url``, opened once (a service's steady state:
    warm connections), the async one on a loop that lives as long as this object."""

    def __init__(self, url: str) -> None:
        self.sync = eventkeep.open_store(url)
        self.runner = asyncio.Runner()
        self.aio = self.runner.run(eventkeep.aio.open_store(url))

    def run(self, coroutine: Coroutine[Any, Any, float]) -> float:
        return self.runner.run(coroutine)

    def close(self) -> None:
        self.sync.close()
        self.runner.run(self.aio.close())
        self.runner.close()


def sync_reads(stores: Stores, *, decode: bool = False) -> Callable[[], float]:
    """The reads on the synchronous API; with ``decode``, each event's ``.event`` is taken
    (its data decoded, as the main benchmark's read workload does)."""

    def run() -> float:
        store = stores.sync
        start = time.perf_counter()
        for _ in range(5):
            count = 0
            for recorded in store.read_stream("long-stream"):
                if decode:
                    recorded.event  # noqa: B018 - decode
                count += 1
            assert count == 1000
        count = 0
        for recorded in store.read_all():
            if decode:
                recorded.event  # noqa: B018 - decode
            count += 1
        assert count > 0
        return time.perf_counter() - start

    return run


def async_reads(stores: Stores, *, decode: bool = False) -> Callable[[], float]:
    async def main() -> float:
        store = stores.aio
        start = time.perf_counter()
        for _ in range(5):
            count = 0
            async for recorded in store.read_stream("long-stream"):
                if decode:
                    recorded.event  # noqa: B018 - decode
                count += 1
            assert count == 1000
        count = 0
        async for recorded in store.read_all():
            if decode:
                recorded.event  # noqa: B018 - decode
            count += 1
        assert count > 0
        return time.perf_counter() - start

    return lambda: stores.run(main())


def async_reads_by_page(stores: Stores) -> Callable[[], float]:
    """The same reads through ``Events.pages()``: each event still iterated, by a plain for."""

    async def main() -> float:
        store = stores.aio
        start = time.perf_counter()
        for _ in range(5):
            count = 0
            async for page in store.read_stream("long-stream").pages():
                for _ in page:
                    count += 1
            assert count == 1000
        count = 0
        async for page in store.read_all().pages():
            for _ in page:
                count += 1
        assert count > 0
        return time.perf_counter() - start

    return lambda: stores.run(main())


def sync_catch_up(stores: Stores) -> Callable[[], float]:
    def run() -> float:
        store = stores.sync
        head = store.head_position()
        start = time.perf_counter()
        seen = 0
        for batch in Subscription(store, after=0).batches(idle_timeout=0.0):
            seen += len(batch.events)
            if batch.position >= head:
                break
        assert seen == head
        return time.perf_counter() - start

    return run


def async_catch_up(stores: Stores) -> Callable[[], float]:
    async def main() -> float:
        store = stores.aio
        head = await store.head_position()
        start = time.perf_counter()
        seen = 0
        batches = eventkeep.aio.AsyncSubscription(store, after=0).batches(idle_timeout=0.0)
        async for batch in batches:
            seen += len(batch.events)
            if batch.position >= head:
                break
        await batches.aclose()
        assert seen == head
        return time.perf_counter() - start

    return lambda: stores.run(main())


# -- the harness --------------------------------------------------------------------------------


def compare(
    name: str, sync: Timing, asynchronous: Timing, repeats: int, work: float, *, cpu: bool = False
) -> None:
    """Run both sides alternately; print ops/s (``work`` operations per run) and the ratio.

    With ``cpu``, also the process's CPU time per run (every thread: the loop's and the store's),
    which a busy machine disturbs far less than the wall clock: operations per CPU second.
    """
    times: dict[str, list[float]] = {"sync": [], "async": []}
    cpus: dict[str, list[float]] = {"sync": [], "async": []}
    for _ in range(repeats):
        for side, timing in (("sync", sync), ("async", asynchronous)):
            start = time.process_time()
            times[side].append(timing())
            cpus[side].append(time.process_time() - start)
    s, a = statistics.median(times["sync"]), statistics.median(times["async"])
    runs = " ".join(f"{work / t:,.0f}" for t in times["sync"])
    aruns = " ".join(f"{work / t:,.0f}" for t in times["async"])
    print(
        f"{name:<44} sync {work / s:>10,.0f}/s   async {work / a:>10,.0f}/s   "
        f"async/sync {s / a:5.2f}x   (runs: sync {runs}; async {aruns})",
        flush=True,
    )
    if cpu:
        sc, ac = statistics.median(cpus["sync"]), statistics.median(cpus["async"])
        print(
            f"{'  per CPU second':<44} sync {work / sc:>10,.0f}/s   async {work / ac:>10,.0f}/s"
            f"   async/sync {sc / ac:5.2f}x",
            flush=True,
        )


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    from benchmarks.pg import Server

    server = Server()
    try:
        print(f"PostgreSQL {server.version}: {server.description} {server.settings}", flush=True)
        with server.database() as target:
            yield target.pg_url
    finally:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--log", type=int, default=20000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", choices=("appends", "reads"), default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.appends, args.log = 1, 300, 3000
    print(f"eventkeep from {eventkeep.__file__}; python {sys.version.split()[0]}", flush=True)
    with postgres() as pg_url, tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            async_appends(pg_url, args.appends)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            return
        if args.only in (None, "appends"):
            compare(
                "PostgreSQL appends: 8 threads vs 100 tasks",
                lambda: sync_appends(pg_url, args.appends),
                lambda: async_appends(pg_url, args.appends),
                args.repeats,
                args.appends,
            )
        if args.only in (None, "reads"):
            sqlite_url = f"sqlite:///{Path(tmp) / 'reads.db'}"
            for label, url in (("SQLite", sqlite_url), ("PostgreSQL", pg_url)):
                fill(url, args.log)
                stores = Stores(url)
                try:
                    events = 5 * 1000 + args.log
                    compare(
                        f"{label} reads (events read)",
                        sync_reads(stores),
                        async_reads(stores),
                        args.repeats,
                        events,
                        cpu=True,
                    )
                    compare(
                        f"{label} reads, each event decoded (.event)",
                        sync_reads(stores, decode=True),
                        async_reads(stores, decode=True),
                        args.repeats,
                        events,
                        cpu=True,
                    )
                    compare(
                        f"{label} reads, async by page (.pages())",
                        sync_reads(stores),
                        async_reads_by_page(stores),
                        args.repeats,
                        events,
                        cpu=True,
                    )
                    compare(
                        f"{label} catch-up (events delivered)",
                        sync_catch_up(stores),
                        async_catch_up(stores),
                        args.repeats,
                        args.log,
                        cpu=True,
                    )
                finally:
                    stores.close()


if __name__ == "__main__":
    main()
