"""Reads from a streaming replica: what they cost and how late they are, side by side.

::

    python -m benchmarks.replica                # about 30 s on 2 cores
    python -m benchmarks.replica --rounds 500

Starts a durable throwaway primary and a hot standby streaming from it (``pg_basebackup -R``,
``tests/pg_cluster.py``) on loopback, and measures in one run, interleaved round by round:

- **wake-up**: an append by another store object on the primary, until ``wait_for_events``
  returns in a reader of the primary (LISTEN/NOTIFY) and in a reader of the replica (LISTEN on
  the primary, then polling the replica's head until it has replayed the event);
- **replay delay**: the append's commit until the replica's head shows it;
- **read your writes**: append, then ``read_stream`` of the same stream, on a primary-only
  store, on a replica store that waits for the replay (``replica_wait=1``), and on one that
  reads from the primary when the replica is behind (``replica_wait=0``);
- **reads**: ``read_stream`` of a 10-event stream with no writes going on, primary vs replica.

Prints a markdown table (p50/p99 in milliseconds, or operations per second).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent / "tests"


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"{p50:.2f} / {p99:.2f}"


def _rate(action: Callable[[], object], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        action()
        done += 1
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput figure")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(_TESTS))
    import eventkeep
    import pg_cluster
    from eventkeep import RawEvent

    primary = pg_cluster.start_cluster(durable=True)
    replica = pg_cluster.start_replica(primary)
    try:
        url = f"{primary.url}?schema=bench_replica"
        read_url = replica.url
        writer = eventkeep.open_store(url)
        on_primary = eventkeep.open_store(url)
        on_replica = eventkeep.open_store(url, read_url=read_url, replica_wait=1)
        no_wait = eventkeep.open_store(url, read_url=read_url, replica_wait=0)
        event = [RawEvent("Noted", {"n": 1})]

        wake_primary: list[float] = []
        wake_replica: list[float] = []
        replay: list[float] = []
        for n in range(args.rounds):
            head = writer.head_position()
            woke: dict[str, float] = {}

            def wait(
                name: str, store: eventkeep.EventStore, after: int, woke: dict[str, float]
            ) -> None:
                if store.wait_for_events(after, timeout=10):
                    woke[name] = time.perf_counter()

            threads = [
                threading.Thread(target=wait, args=("primary", on_primary, head, woke)),
                threading.Thread(target=wait, args=("replica", on_replica, head, woke)),
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.005)  # both waiting
            start = time.perf_counter()
            result = writer.append(f"wake-{n % 10}", event)
            committed = time.perf_counter()
            assert on_replica._replica is not None  # type: ignore[attr-defined]
            while on_replica._replica.head() < result.position:  # type: ignore[attr-defined]
                pass
            replay.append(time.perf_counter() - committed)
            for thread in threads:
                thread.join()
            wake_primary.append(woke["primary"] - start)
            wake_replica.append(woke["replica"] - start)

        def read_your_write(store: eventkeep.EventStore) -> Callable[[], object]:
            def action() -> None:
                store.append("ryw", event)
                list(store.read_stream("ryw", backwards=True, limit=1))

            return action

        for k in range(10):
            writer.append("read-10", [RawEvent("Noted", {"n": k})])
        rows = []
        for name, store in (
            ("primary only", on_primary),
            ("replica, replica_wait=1", on_replica),
            ("replica, replica_wait=0", no_wait),
        ):
            rows.append((name, _rate(read_your_write(store), args.seconds)))
        time.sleep(0.5)
        reads = [
            (name, _rate(lambda s=store: list(s.read_stream("read-10")), args.seconds))
            for name, store in (("primary", on_primary), ("replica", on_replica))
        ]
        fallbacks = no_wait._replica.primary_reads  # type: ignore[attr-defined]
        for store in (writer, on_primary, on_replica, no_wait):
            store.close()
    finally:
        replica.destroy()
        primary.destroy()

    print(f"\n## Reads from a streaming replica (loopback, {args.rounds} rounds)\n")
    print("| figure | p50 / p99 ms |")
    print("|---|---:|")
    print(f"| append to wake-up, reader of the primary (LISTEN) | {_ms(wake_primary)} |")
    print(f"| append to wake-up, reader of the replica | {_ms(wake_replica)} |")
    print(f"| commit to replayed on the replica | {_ms(replay)} |")
    print("\n| append + read_stream of it | per second |")
    print("|---|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print(f"\n(replica_wait=0 served {fallbacks} reads from the primary)\n")
    print("| read_stream, 10 events, no writes | per second |")
    print("|---|---:|")
    for name, rate in reads:
        print(f"| {name} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
