"""Lifecycle benchmarks (docs/lifecycle.md), side by side in one run, on memory and SQLite.

1. What the lifecycle costs the hot path, in the same build with its checks on and off:
   ``read_stream`` of a 10-event stream (the tombstone look-up), and a one-event append (on
   SQLite, the position-floor check that keeps positions unique after the log's last events
   were removed; memory has none).
2. Throughput: ``compact`` (archive to gzip JSON lines, then remove) and reading the archived
   history back (``read_stream(archived=True)``, digest and hash chain checked) against reading
   the same number of live events.

Medians of interleaved repetitions; SQLite files in a temporary folder (synchronous=FULL)::

    python -m benchmarks.lifecycle
    python -m benchmarks.lifecycle --events 20000 --ops 300 --repeats 3 --backends sqlite
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from eventkeep import RawEvent


def _open(backend: str, folder: Path, name: str) -> eventkeep.EventStore:
    archives = folder / f"{name}-archives"
    if backend == "memory":
        return eventkeep.open_store("memory://", archive_dir=str(archives))
    return eventkeep.open_store(f"sqlite:///{folder / name}.db", archive_dir=str(archives))


def _per_op(fn: Callable[[int], object], ops: int) -> float:
    start = time.perf_counter()
    for n in range(ops):
        fn(n)
    return (time.perf_counter() - start) / ops * 1e6


def hot_path(backend: str, folder: Path, ops: int, repeats: int) -> list[str]:
    """The same build with and without the lifecycle's work on the hot path: the tombstone
    check of ``read_stream`` (one metadata look-up) and, on SQLite, the position-floor check of
    each insert (both switched off on the instance or module for the "without" runs)."""
    from eventkeep.backends.sqlite import sql

    store = _open(backend, folder, "hot")
    store.append("s", [RawEvent("Noted", {"n": n}) for n in range(10)])
    store.set_retention("s", max_count=1000)  # metadata present: the look-up finds a row
    checked = store._lifecycle_low
    floor = sql.POSITION_FLOOR
    reads: dict[bool, list[float]] = {True: [], False: []}
    appends: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for on in (True, False):
            store._lifecycle_low = checked if on else (lambda s, low, a: low)  # type: ignore[method-assign]
            sql.POSITION_FLOOR = floor if on else "SELECT NULL"
            reads[on].append(_per_op(lambda n: list(store.read_stream("s")), ops))
            appends[on].append(
                _per_op(lambda n: store.append(f"p-{n}", [RawEvent("Noted", {})]), ops)
            )
    store._lifecycle_low = checked  # type: ignore[method-assign]
    sql.POSITION_FLOOR = floor
    store.close()
    lines = []
    for what, runs in (
        ("read_stream, 10 events (tombstone check)", reads),
        ("append, 1 event (position floor check)", appends),
    ):
        with_, without = statistics.median(runs[True]), statistics.median(runs[False])
        lines.append(
            f"| {backend} | {what} | {with_:.1f} us | {without:.1f} us | {with_ / without:.2f}x |"
        )
    return lines


def throughput(backend: str, folder: Path, events: int, repeats: int) -> list[str]:
    compact: list[float] = []
    through: list[float] = []
    live: list[float] = []
    for run in range(repeats):
        store = _open(backend, folder, f"big-{run}")
        batch = [RawEvent("Noted", {"n": n, "text": "x" * 200}) for n in range(500)]
        for _ in range(events // 500):
            store.append("big", batch)
            store.append("copy", batch)
        start = time.perf_counter()
        sum(1 for _ in store.read_stream("copy"))
        live.append(events / (time.perf_counter() - start))
        store.set_retention("big", max_count=10)
        start = time.perf_counter()
        removed = store.compact().events
        compact.append(removed / (time.perf_counter() - start))
        start = time.perf_counter()
        sum(1 for _ in store.read_stream("big", archived=True))
        through.append(events / (time.perf_counter() - start))
        store.close()
    return [
        f"| {backend} | compact ({events:,} events, 200 B) | {statistics.median(compact):,.0f}/s |",
        f"| {backend} | read-through of the archive | {statistics.median(through):,.0f}/s |",
        f"| {backend} | the same read of live events | {statistics.median(live):,.0f}/s |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="memory,sqlite")
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000, help="a multiple of 500")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        print("| backend | hot path | with lifecycle | without | ratio |")
        print("|---|---|---|---|---|")
        for backend in backends:
            for line in hot_path(backend, folder, args.ops, args.repeats):
                print(line, flush=True)
        print()
        print("| backend | work | throughput |")
        print("|---|---|---|")
        for backend in backends:
            for line in throughput(backend, folder, args.events, args.repeats):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
