"""Threads sharing ONE SQLite store object: a mixed read/write workload (not a test).

    python benchmarks/sqlite_threads.py                      # 4 threads, 3 runs, median
    python benchmarks/sqlite_threads.py --threads 8 --iterations 3000 --repeats 5
    python benchmarks/sqlite_threads.py --profile            # cProfile of every thread, merged
    python benchmarks/sqlite_threads.py --quick              # a smoke run (well under a second)

Each thread owns 10 streams and loops a fixed number of iterations; one iteration is three
operations on the shared store:

1. append one event to the next of its streams, with the expected version (a conflict would
   be a bug: nobody else writes that stream);
2. read that stream back: its last 10 events (``read_stream`` from version - 9);
3. read a page of the global log: 100 events of ``read_all`` after a position 100 behind the
   head this thread last saw.

``--workload append`` drops the two reads: each iteration is one append (concurrent inserts).
All threads start together (a barrier); the clock stops when the last one is done. The result is
operations per second over all threads (3 per mixed iteration), the median of ``--repeats`` runs,
each
on a fresh file (WAL, ``synchronous=FULL``: eventkeep's defaults; ``--synchronous NORMAL`` to
take fsync out). The store is pre-filled with 1,000 events (untimed) so that every log page is
full. Which eventkeep ran is printed (its ``__file__``): to compare two versions of the code,
run this script with ``PYTHONPATH=<other checkout>/src``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import eventkeep
from eventkeep import RawEvent, StreamAppend

STREAMS_PER_THREAD = 10
STREAM_TAIL = 10
LOG_PAGE = 100
PREFILL = 1000


def prefill(store: eventkeep.EventStore) -> None:
    appends = [
        StreamAppend(
            f"prefill-{n}", [RawEvent("bench.Filled", {"n": n, "i": i}) for i in range(10)]
        )
        for n in range(PREFILL // 10)
    ]
    store.append_many(appends)


def worker(
    store: eventkeep.EventStore,
    index: int,
    iterations: int,
    barrier: threading.Barrier,
    profiler: cProfile.Profile | None,
    errors: list[BaseException],
    reads: bool,
) -> None:
    streams = [f"t{index}-s{n}" for n in range(STREAMS_PER_THREAD)]
    versions = dict.fromkeys(streams, 0)
    payload = "x" * 64
    seen_head = PREFILL
    try:
        barrier.wait()
        if profiler is not None:
            profiler.enable()
        for n in range(iterations):
            stream = streams[n % STREAMS_PER_THREAD]
            version = versions[stream]
            event = RawEvent("bench.Appended", {"thread": index, "n": n, "pad": payload})
            result = store.append(stream, [event], expected_version=version)
            versions[stream] = result.version
            seen_head = max(seen_head, result.position)
            if not reads:
                continue
            tail = list(store.read_stream(stream, from_version=max(1, result.version - 9)))
            if len(tail) != min(STREAM_TAIL, result.version):
                raise AssertionError(f"{stream}: read {len(tail)} events back")
            page = list(store.read_all(after=seen_head - LOG_PAGE, limit=LOG_PAGE))
            if len(page) != LOG_PAGE:
                raise AssertionError(f"a log page held {len(page)} events")
    except BaseException as exc:  # handed to the main thread
        errors.append(exc)
        barrier.abort()
    finally:
        if profiler is not None:
            profiler.disable()


def run_once(
    folder: Path, threads: int, iterations: int, synchronous: str, profile: bool, reads: bool
) -> tuple[float, list[cProfile.Profile]]:
    path = folder / f"threads-{time.perf_counter_ns()}.db"
    store = eventkeep.open_store(f"sqlite:///{path}?synchronous={synchronous}")
    try:
        prefill(store)
        barrier = threading.Barrier(threads + 1)
        errors: list[BaseException] = []
        profilers = [cProfile.Profile() for _ in range(threads)] if profile else []
        pool = [
            threading.Thread(
                target=worker,
                args=(
                    store,
                    i,
                    iterations,
                    barrier,
                    profilers[i] if profile else None,
                    errors,
                    reads,
                ),
                name=f"bench-{i}",
            )
            for i in range(threads)
        ]
        for thread in pool:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        expected = PREFILL + threads * iterations
        if store.head_position() != expected:
            raise AssertionError(f"head {store.head_position()}, expected {expected}")
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return threads * iterations * (3 if reads else 1) / elapsed, profilers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=2000, help="per thread")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--workload", choices=("mixed", "append"), default="mixed")
    parser.add_argument("--quick", action="store_true", help="100 iterations, one run")
    parser.add_argument("--profile", action="store_true", help="cProfile every thread, merged")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--folder", type=Path, help="where the database files go (default: tmp)")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.repeats = 100, 1
    rates: list[float] = []
    profilers: list[cProfile.Profile] = []
    with tempfile.TemporaryDirectory(prefix="ek-bench-threads-", dir=args.folder) as tmp:
        for _ in range(args.repeats):
            rate, profiled = run_once(
                Path(tmp),
                args.threads,
                args.iterations,
                args.synchronous,
                args.profile,
                args.workload == "mixed",
            )
            rates.append(rate)
            profilers.extend(profiled)
            print(f"run: {rate:,.0f} operations/s", file=sys.stderr, flush=True)
    where = Path(eventkeep.__file__).resolve().parent
    what = "append + read_stream + read_all page" if args.workload == "mixed" else "append"
    print(
        f"{args.threads} threads x {args.iterations} iterations ({what}) on one SQLite store, "
        f"synchronous={args.synchronous.upper()}: "
        f"{statistics.median(rates):,.0f} operations/s (median of {len(rates)}; "
        f"every run: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    print(f"eventkeep from {where}; {os.cpu_count()} cores, load average {_load()}")
    if profilers:
        stats: Any = pstats.Stats(profilers[0], stream=sys.stdout)
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.sort_stats(args.sort).print_stats(args.limit)
    return 0


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
