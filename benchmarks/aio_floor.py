"""Where the asyncio API's reads cannot go below: the costs under ``benchmarks.aio``'s read
comparisons, each measured side by side in one process (not a test).

    python -m benchmarks.aio_floor               # 15 alternations, minimum and median
    python -m benchmarks.aio_floor --repeats 31

1. **A page on PostgreSQL, bare psycopg**: the store's page statement (``plans.all_page``,
   1,000 rows, binary) fetched on a synchronous connection, on an ``AsyncConnection``, and on
   the synchronous connection from a store thread (``StoreThreads``, the hand-over included);
   and a one-row query (``plans.head_position``) on each. CPU time of the process per
   statement.
2. **A hand-over**: a call that does nothing, run on a store thread and awaited (CPU and wall
   time per call).
3. **Garbage collection**: collections and their time during a catch-up of the log
   (``--log`` events, batches of 500), synchronous against asynchronous, at several batches
   per hand-over (``eventkeep.aio.projections.MOST_BATCHES``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

import eventkeep
import eventkeep.aio.projections
from benchmarks.aio import Stores, async_catch_up, fill, postgres, sync_catch_up
from eventkeep.aio._threads import StoreThreads
from eventkeep.backends.postgres import plans


def _report(name: str, per_call: list[float], unit: str = "µs CPU") -> None:
    print(
        f"{name:<52} min {min(per_call) * 1e6:8.1f}   median "
        f"{statistics.median(per_call) * 1e6:8.1f} {unit}",
        flush=True,
    )


def pages(url: str, repeats: int) -> None:
    store = eventkeep.open_store(url)
    try:
        conninfo, session = store._db.conninfo, store._db.session_sql  # type: ignore[attr-defined]
    finally:
        store.close()
    page, head = plans.all_page(0, 1000, None, None), plans.head_position()
    sync_conn = psycopg.connect(conninfo, autocommit=True)
    sync_conn.execute(session)

    def on_sync(step: plans.Run) -> None:
        sync_conn.execute(step.statement, step.params, binary=step.binary).fetchall()

    async def main() -> None:
        async_conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        await async_conn.execute(session)
        threads = StoreThreads("floor", 4)
        costs: dict[str, list[float]] = {}

        async def on_async(step: plans.Run) -> None:
            cur = async_conn.cursor(binary=step.binary)
            await cur.execute(step.statement, step.params)
            await cur.fetchall()

        async def on_thread(step: plans.Run) -> None:
            await threads.call(lambda: on_sync(step))

        async def side(name: str, step: plans.Run, count: int, run: Callable[..., Any]) -> None:
            start = time.process_time()
            for _ in range(count):
                result = run(step)
                if asyncio.iscoroutine(result):
                    await result
            costs.setdefault(name, []).append((time.process_time() - start) / count)

        for _ in range(repeats):
            for label, step, count in (
                ("page of 1,000 rows", page, 50),
                ("one-row query", head, 300),
            ):
                await side(f"{label}: sync connection", step, count, on_sync)
                await side(f"{label}: AsyncConnection", step, count, on_async)
                await side(f"{label}: sync connection on a store thread", step, count, on_thread)
        for name, values in costs.items():
            _report(name, values)
        threads.close()
        await async_conn.close()

    try:
        asyncio.run(main())
    finally:
        sync_conn.close()


def hand_over(repeats: int) -> None:
    async def main() -> None:
        threads = StoreThreads("floor", 4)
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(repeats):
            start, clock = time.process_time(), time.perf_counter()
            for _ in range(1000):
                await threads.call(int)
            cpu.append((time.process_time() - start) / 1000)
            wall.append((time.perf_counter() - clock) / 1000)
        _report("a hand-over to a store thread and back", cpu)
        _report("a hand-over to a store thread and back", wall, "µs wall")
        threads.close()

    asyncio.run(main())


class _Collections:
    """Garbage collections (per generation) and their time, while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.counts = [0, 0, 0]
        self._started: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._started[me] = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started.pop(me, time.perf_counter())
            self.counts[info["generation"]] += 1


def collections(url: str, repeats: int) -> None:
    stores = Stores(url)
    try:
        sides: dict[str, tuple[int | None, Callable[[], float]]] = {
            "catch-up, synchronous": (None, sync_catch_up(stores))
        }
        for most in (1, 4, 16):
            sides[f"catch-up, async, {most} batches a hand-over"] = (most, async_catch_up(stores))
        seen: dict[str, list[tuple[float, float, list[int]]]] = {name: [] for name in sides}
        for _ in range(repeats):
            for name, (most, run) in sides.items():
                if most is not None:
                    eventkeep.aio.projections.MOST_BATCHES = most
                watch = _Collections()
                gc.callbacks.append(watch)
                start = time.process_time()
                try:
                    run()
                finally:
                    gc.callbacks.remove(watch)
                seen[name].append((time.process_time() - start, watch.seconds, watch.counts))
        for name, runs in seen.items():
            cpu = statistics.median(r[0] for r in runs)
            collected = statistics.median(r[1] for r in runs)
            print(
                f"{name:<52} CPU {cpu * 1000:6.1f} ms   collecting {collected * 1000:5.1f} ms   "
                f"collections by generation (last run) {runs[-1][2]}",
                flush=True,
            )
    finally:
        stores.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--log", type=int, default=20000)
    args = parser.parse_args(argv)
    hand_over(args.repeats)
    with postgres() as url:
        fill(url, args.log)
        pages(url, args.repeats)
        collections(url, args.repeats)


if __name__ == "__main__":
    main()
