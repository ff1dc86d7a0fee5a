"""Where the asyncio reads' gap to the synchronous API goes: each read comparison of
``benchmarks.aio`` alternated many times in one process, with the wall clock, the process's
CPU time and the loop thread's own CPU time (``time.thread_time``) of every run (not a test).

    python -m benchmarks.aio_gap                       # SQLite and PostgreSQL, 21 alternations
    python -m benchmarks.aio_gap --backend sqlite --rounds 41
    python -m benchmarks.aio_gap --gc freeze           # hypotheses, never shipped: see docs/aio.md
    python -m benchmarks.aio_gap --gc disable
    python -m benchmarks.aio_gap --switch 0.0005       # sys.setswitchinterval
    python -m benchmarks.aio_gap --versus wrap_future  # the hand-over before 2026-11-30 too
    python -m benchmarks.aio_gap --versus pages        # hand-overs of 1, 2 and 4 pages
    python -m benchmarks.aio_gap --versus batches --only catch-up   # 1, 2, 4 batches

For each comparison the minimum and the median of each side are printed, and async/sync of
both (a ratio of minimums is what a quiet machine gives; the median what this one gave). The
loop thread's CPU time is the asyncio API's own cost on the loop (``async for``, hand-overs);
the rest of the async side's CPU time ran on the store threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import eventkeep.aio
import eventkeep.aio.events
import eventkeep.aio.projections
from benchmarks.aio import (
    Stores,
    async_catch_up,
    async_reads,
    async_reads_by_page,
    fill,
    postgres,
    sync_catch_up,
    sync_reads,
)
from eventkeep.aio._threads import StoreThreads
from eventkeep.projections import HandlerContext, Projection, Runner, handles
from eventkeep.store.types import PAGE_SIZE

T = TypeVar("T")


_names = itertools.count()


class _Count(Projection):
    """Counts the benchmark's events; external (its checkpoint saved once per batch)."""

    transactional = False
    batch_size = 500

    name = "bench.count"

    def __init__(self) -> None:
        self.count = 0

    @handles("bench.Happened")
    def counted(self, event: object, ctx: HandlerContext) -> None:
        self.count += 1


def _fresh() -> _Count:
    """A new projection each run, so that it catches up from position 0."""
    named = type("Count", (_Count,), {"name": f"bench.count.{next(_names)}"})
    return named()  # type: ignore[no-any-return]


def sync_runner(stores: Stores) -> Callable[[], float]:
    """A projection's catch-up by ``Runner`` (the whole log)."""

    def run() -> float:
        start = time.perf_counter()
        Runner(stores.sync, [_fresh()]).run(until_caught_up=True)
        return time.perf_counter() - start

    return run


def async_runner(stores: Stores) -> Callable[[], float]:
    """The same by ``AsyncRunner`` (the synchronous runner on a thread of its own)."""

    async def main() -> float:
        start = time.perf_counter()
        await eventkeep.aio.AsyncRunner(stores.aio, [_fresh()]).run(until_caught_up=True)
        return time.perf_counter() - start

    return lambda: stores.run(main())


class Runs:
    """Wall clock, process CPU and loop-thread CPU of each run of one side."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.loop: list[float] = []

    def time(self, run: Callable[[], float]) -> None:
        cpu, loop = time.process_time(), time.thread_time()
        self.wall.append(run())
        self.loop.append(time.thread_time() - loop)
        self.cpu.append(time.process_time() - cpu)


def _line(name: str, values: list[float], sync: list[float]) -> str:
    low, mid = min(values), statistics.median(values)
    return (
        f"    {name:<22} min {low * 1e3:7.2f} ms  median {mid * 1e3:7.2f} ms"
        f"   async/sync: min {min(sync) / low:5.2f}x  median {statistics.median(sync) / mid:5.2f}x"
    )


async def _wrapped_call(self: StoreThreads, fn: Callable[[], T]) -> T:
    """The hand-over as it was until 2026-11-30: ``submit`` (a ``concurrent.futures.Future``)
    awaited through ``asyncio.wrap_future``."""
    return await asyncio.wrap_future(self.submit(fn))


def _with_call(call: Callable[..., Any], run: Callable[[], float]) -> Callable[[], float]:
    def timed() -> float:
        shipped = StoreThreads.call
        StoreThreads.call = call  # type: ignore[method-assign]
        try:
            return run()
        finally:
            StoreThreads.call = shipped  # type: ignore[method-assign]

    return timed


def compare(
    name: str,
    sync: Callable[[], float],
    variants: dict[str, Callable[[], float]],
    rounds: int,
) -> None:
    """Each of ``variants`` (async sides) alternated with ``sync``, ``rounds`` times."""
    s = Runs()
    sides = {label: Runs() for label in variants}
    for _ in range(rounds):
        s.time(sync)
        for label, run in variants.items():
            sides[label].time(run)
    print(name, flush=True)
    for label, a in sides.items():
        print(f"  {label}", flush=True)
        print(_line("wall", a.wall, s.wall), flush=True)
        print(_line("CPU", a.cpu, s.cpu), flush=True)
        print(
            f"    {'loop thread CPU':<22} min {min(a.loop) * 1e3:7.2f} ms  median "
            f"{statistics.median(a.loop) * 1e3:7.2f} ms",
            flush=True,
        )


def _with_pages(pages: int, run: Callable[[], float]) -> Callable[[], float]:
    """``run`` with hand-overs of ``pages`` pages (reads) and ``2 * pages`` batches (catch-up)."""

    def timed() -> float:
        shipped = eventkeep.aio.events.HAND_OVER, eventkeep.aio.projections.MOST_BATCHES
        eventkeep.aio.events.HAND_OVER = pages * PAGE_SIZE + 1
        eventkeep.aio.projections.MOST_BATCHES = 2 * pages
        try:
            return run()
        finally:
            eventkeep.aio.events.HAND_OVER, eventkeep.aio.projections.MOST_BATCHES = shipped

    return timed


def _with_batches(batches: int, run: Callable[[], float]) -> Callable[[], float]:
    """``run`` with catch-up hand-overs of at most ``batches`` batches."""

    def timed() -> float:
        shipped = eventkeep.aio.projections.MOST_BATCHES
        eventkeep.aio.projections.MOST_BATCHES = batches
        try:
            return run()
        finally:
            eventkeep.aio.projections.MOST_BATCHES = shipped

    return timed


def _variants(run: Callable[[], float], versus: str | None) -> dict[str, Callable[[], float]]:
    if versus == "wrap_future":
        return {"async, wrap_future hand-over": _with_call(_wrapped_call, run), "async": run}
    if versus == "batches":
        return {f"async, {n} batches a hand-over": _with_batches(n, run) for n in (1, 4, 16)}
    if versus == "pages":
        return {f"async, {n} pages a hand-over": _with_pages(n, run) for n in (2, 4, 8)}
    return {"async": run}


@contextlib.contextmanager
def _backend(name: str, tmp: str) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{Path(tmp) / 'gap.db'}"
    else:
        with postgres() as url:
            yield url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--log", type=int, default=20000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--gc", choices=("on", "freeze", "disable"), default="on")
    parser.add_argument("--switch", type=float, default=None)
    parser.add_argument(
        "--versus",
        choices=("wrap_future", "pages", "batches"),
        default=None,
        help="also the async side with an earlier variant (alternated)",
    )
    parser.add_argument("--only", choices=("reads", "pages", "catch-up", "runner"), default=None)
    args = parser.parse_args(argv)
    if args.switch is not None:
        sys.setswitchinterval(args.switch)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(
        f"gc {args.gc}, switch interval {sys.getswitchinterval()} s, {args.rounds} alternations",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with _backend(backend, tmp) as url:
                fill(url, args.log)
                stores = Stores(url)
                if args.gc == "freeze":
                    gc.collect()
                    gc.freeze()
                elif args.gc == "disable":
                    gc.disable()
                try:
                    comparisons = {
                        "reads": ("async for", sync_reads, async_reads),
                        "pages": (".pages()", sync_reads, async_reads_by_page),
                        "catch-up": ("catch-up", sync_catch_up, async_catch_up),
                        "runner": ("projection runner catch-up", sync_runner, async_runner),
                    }
                    for key, (label, sync, asynchronous) in comparisons.items():
                        if args.only in (None, key):
                            compare(
                                f"{backend} {label}",
                                sync(stores),
                                _variants(asynchronous(stores), args.versus),
                                args.rounds,
                            )
                finally:
                    gc.enable()
                    gc.unfreeze()
                    stores.close()


if __name__ == "__main__":
    main()
