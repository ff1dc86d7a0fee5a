"""Append throughput of the PostgreSQL backend with 1 and with 4 concurrent writer processes.

    python benchmarks/pg_writers.py                      # a throwaway durable cluster (fsync on)
    python benchmarks/pg_writers.py --url postgresql://user@host/db
    python benchmarks/pg_writers.py --seconds 10 --repeats 5 --batch 1 --batch 10
    python benchmarks/pg_writers.py --writers 1 --writers 4 --writers 8 --batch 1 \
        --group-commit on --group-commit off        # group commit against one commit per append

``--group-commit`` (``on``, ``off``, or both, alternated run by run): the store option. The
table then also gives the WAL flushes (``pg_stat_wal.wal_sync``, the whole server's, walwriter
included) per append of each configuration: below 1 when concurrent appends share flushes.

Each writer is an OS process with its own store (one pooled connection in use), appending to
streams of its own (expected versions checked) for a fixed time after a common start signal.
The table gives the total events per second over all writers (the median run), and the p50/p99
latency of one append call. The issue's target: 4 writers >= 1.5x one writer. Not a test: no
assertion, just numbers; compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "tests"))  # for pg_cluster


def worker(url: str, folder: Path, name: str, seconds: float, batch: int) -> None:
    import eventkeep
    from eventkeep import RawEvent

    store = eventkeep.open_store(url, pool_min_size=1, pool_max_size=2)
    streams = [f"{name}-{n}" for n in range(50)]
    versions = dict.fromkeys(streams, 0)

    def append(n: int) -> None:
        stream = streams[n % len(streams)]
        events = [
            RawEvent("bench.Appended", {"writer": name, "n": n, "i": i}) for i in range(batch)
        ]
        versions[stream] = store.append(stream, events, expected_version=versions[stream]).version

    for n in range(50):  # warm up: connections, prepared statements
        append(n)
    (folder / f"{name}.ready").touch()
    go = folder / "go"
    while not go.exists():
        time.sleep(0.001)
    start = float(go.read_text())
    stop = start + seconds
    latencies = []
    n = 50
    while True:
        before = time.perf_counter()
        if time.time() >= stop:
            break
        append(n)
        latencies.append(time.perf_counter() - before)
        n += 1
    store.close()
    (folder / f"{name}.json").write_text(json.dumps(latencies))


WAL_SYNCS = "SELECT wal_sync FROM pg_stat_wal"


def wal_syncs(base: str) -> int:
    """The server's WAL flushes so far (backends report theirs when they end, and every
    writer's backend has ended when this is read)."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        row = conn.execute(WAL_SYNCS).fetchone()
    return int(row[0]) if row else 0


def run(url: str, writers: int, seconds: float, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = [f"w{uuid.uuid4().hex[:6]}" for _ in range(writers)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE),
                    "--worker",
                    name,
                    "--url",
                    url,
                    "--folder",
                    tmp,
                    "--seconds",
                    str(seconds),
                    "--batch",
                    str(batch),
                ],
            )
            for name in names
        ]
        deadline = time.monotonic() + 120
        while not all((folder / f"{n}.ready").exists() for n in names):
            if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
                raise RuntimeError("a writer failed to start")
            time.sleep(0.01)
        tmp_go = folder / "go.tmp"
        tmp_go.write_text(str(time.time() + 0.2))
        tmp_go.rename(folder / "go")
        for proc in procs:
            if proc.wait(timeout=seconds + 120) != 0:
                raise RuntimeError("a writer failed")
        latencies = [x for n in names for x in json.loads((folder / f"{n}.json").read_text())]
    latencies.sort()
    appends = len(latencies)
    return {
        "events_per_s": appends * batch / seconds,
        "appends_per_s": appends / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a PostgreSQL URL (default: start a throwaway cluster)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writers", type=int, action="append")
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--group-commit", choices=("on", "off"), action="append")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.url, Path(args.folder), args.worker, args.seconds, args.batch[0])
        return 0

    import pg_cluster

    cluster = None
    base = args.url or os.environ.get("EVENTKEEP_BENCH_POSTGRES_URL")
    if not base:
        cluster = pg_cluster.start_cluster(durable=True)
        base = cluster.url
    try:
        return report(base, args, cluster is not None)
    finally:
        if cluster is not None:
            cluster.destroy()


def report(base: str, args: Any, own_cluster: bool) -> int:
    import psycopg

    modes = args.group_commit or ["on"]
    configs = [
        (b, w, m) for b in args.batch or [1, 10] for w in args.writers or [1, 4] for m in modes
    ]
    runs: dict[tuple[int, int, str], list[dict[str, float]]] = {c: [] for c in configs}
    for _ in range(args.repeats):  # interleaved, so that a busy moment hits every config alike
        for batch, writers, mode in configs:
            schema = f"ek_bench_{uuid.uuid4().hex[:10]}"
            sep = "&" if "?" in base else "?"
            url = f"{base}{sep}schema={schema}&group_commit={mode}"
            try:
                time.sleep(0.5)  # the backends of the run before have reported their flushes
                syncs = wal_syncs(base)
                result = run(url, writers, args.seconds, batch)
                time.sleep(0.5)
                result["syncs_per_append"] = (wal_syncs(base) - syncs) / (
                    result["appends_per_s"] * args.seconds
                )
                runs[(batch, writers, mode)].append(result)
            finally:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    where = "a throwaway cluster, fsync on" if own_cluster else "the given server"
    print(f"\nPostgreSQL appends ({where}; {args.seconds:g}s per run, {args.repeats} runs each)\n")
    print(
        "| events/append | writers | group commit | events/s (median) | best run | appends/s "
        "| p50 ms | p99 ms | vs 1 writer (median) | WAL flushes/append |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    single: dict[tuple[int, str], float] = {}
    for batch, writers, mode in configs:
        ordered = sorted(runs[(batch, writers, mode)], key=lambda r: r["events_per_s"])
        r = ordered[len(ordered) // 2]
        if writers == 1:
            single[batch, mode] = r["events_per_s"]
        one = single.get((batch, mode))
        ratio = r["events_per_s"] / one if one else float("nan")
        print(
            f"| {batch} | {writers} | {mode} | {r['events_per_s']:,.0f} | "
            f"{ordered[-1]['events_per_s']:,.0f} | {r['appends_per_s']:,.0f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {ratio:.2f}x "
            f"| {r['syncs_per_append']:.2f} |"
        )
    every = {f"{b}x{w} {m}": [round(x["events_per_s"]) for x in v] for (b, w, m), v in runs.items()}
    print(f"\nevery run (events/s, events/append x writers): {every}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
