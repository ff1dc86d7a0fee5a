"""Growth: does a store slow down as its log grows? eventkeep beside the raw floor, per size.

For each backend (a SQLite file with the store's default durability: WAL, ``synchronous=FULL``;
PostgreSQL on a throwaway durable cluster, fsync on, ``pg.py``, or
``$EVENTKEEP_BENCH_POSTGRES_URL``) one eventkeep store and one raw floor table (the columns of
``systems/raw.py``: the same row without hash chain, heads, tags, triggers or generated columns)
grow side by side through the sizes (10,000, 1,000,000 and 10,000,000 events by default) with
the same events, while a second pair stays at the smallest size. At each size the four are
measured in rotating blocks (so the machine's load hits them alike, and the growth ratios, this
size over the small pair, come from one stretch of time):

- a single-event append with its expected version to an existing stream (p50/p99);
- a read of a random 10-event stream, every event's data and metadata decoded (p50/p99);
- bytes per event on disk (SQLite: the file and its WAL after a checkpoint; PostgreSQL:
  ``pg_total_relation_size`` of the events, the stream heads and the tag index, indexes and
  TOAST included) and the ratio to the floor's;
- PostgreSQL: the stream read's server-side cost (``EXPLAIN (ANALYZE, BUFFERS)`` of random
  streams, every subject alternating), one full plan of each, and the stored size of the wide
  columns;
- at the largest size, catch-up of the whole log (data and metadata decoded), events/s.

The events (``growth_stores.py``): streams of 10 events written interleaved (one event of each
of 1,000 streams per ``append_many``: a stream's events lie on different pages, as streams
written over time do), 1 stream in 1,000 of 500; data 200-400 bytes of JSON, metadata about 90
bytes, 1 event in 5 tagged. The floor is filled with ``COPY`` (PostgreSQL) or ``executemany``
(SQLite). Filling stops when ``--budget`` seconds are spent: the sizes not reached are reported
as such, nothing is extrapolated. After each fill PostgreSQL runs ``VACUUM ANALYZE`` (unless
``--no-vacuum``) and a ``CHECKPOINT`` on both databases, SQLite a WAL checkpoint. The load
average is recorded around every measurement.

::

    python -m benchmarks.growth                              # 10k, 1M, 10M on both backends
    python -m benchmarks.growth --smoke                      # 2,000 and 20,000 events, few ops
    python -m benchmarks.growth --backends postgres --sizes 10000,1000000 --no-vacuum
    python -m benchmarks.growth --render a.json b.json       # one growth.md from two runs
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: the repository, not benchmarks/ (whose copy.py would shadow the
    # standard library's copy module), is where imports start.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)


from benchmarks.growth_report import markdown
from benchmarks.growth_stores import (
    BLOCK,
    PLAN_SAMPLES,
    SIZES,
    SMOKE_SIZES,
    STREAM_EVENTS,
    Layout,
    PostgresSide,
    Side,
    SqliteSide,
    load,
    say,
)

RESULTS = Path(__file__).resolve().parent / "results"

# -- measuring ----------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6, 1),
        "mean_us": round(statistics.fmean(ordered) * 1e6, 1),
        "ops": len(ordered),
    }


Op = Callable[[int], Any]


def interleaved(
    ops: int, groups: list[tuple[Callable[[], int], dict[str, Op]]]
) -> dict[str, list[float]]:
    """``ops`` calls of every subject, in blocks of BLOCK, the subjects' order rotating from
    one block to the next. Each group shares one draw of keys (eventkeep and its floor read
    or append to the same streams)."""
    timer = time.perf_counter
    names = [name for _, subjects in groups for name in subjects]
    times: dict[str, list[float]] = {name: [] for name in names}
    for block in range(max(1, ops // BLOCK)):
        keys: dict[str, list[int]] = {}
        for pick, subjects in groups:
            drawn = [pick() for _ in range(BLOCK)]
            keys.update(dict.fromkeys(subjects, drawn))
        ops_of = {name: op for _, subjects in groups for name, op in subjects.items()}
        turn = block % len(names)
        for name in names[turn:] + names[:turn]:
            op, out = ops_of[name], times[name]
            for key in keys[name]:
                started = timer()
                op(key)
                out.append(timer() - started)
    return times


def fill(side: Side, layout: Layout, target: int, deadline: float) -> dict[str, float]:
    """Grow both to ``target`` events, or as far as ``deadline`` (``time.monotonic()``) lets."""
    ek_time = raw_time = 0.0
    added = layout.events
    last_note = time.monotonic()
    for batch in layout.batches(target):
        started = time.perf_counter()
        rows = side.ek_fill(batch)
        ek_time += time.perf_counter() - started
        started = time.perf_counter()
        side.raw_fill(rows)
        raw_time += time.perf_counter() - started
        if time.monotonic() > deadline:
            say(f"  {side.name}: the fill budget ran out at {layout.events:,} events")
            break
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            say(f"  {side.name}: {layout.events:,} events (load {load()})")
    added = layout.events - added
    return {
        "added": added,
        "eventkeep_events_per_s": round(added / ek_time) if ek_time else 0,
        "raw_events_per_s": round(added / raw_time) if raw_time else 0,
        "seconds": round(ek_time + raw_time, 1),
    }


def appender(versions: dict[int, int], append: Callable[[int, int], None]) -> Op:
    """A single-event append with its expected version, tracking each stream's version."""

    def op(k: int) -> None:
        version = versions.get(k, STREAM_EVENTS)
        append(k, version)
        versions[k] = version + 1

    return op


def measure_size(
    side: Side, layout: Layout, ref: tuple[Side, Layout] | None, appends: int, reads: int
) -> dict[str, Any]:
    """Appends and reads of eventkeep and its floor at this size, and (``ref``) of the
    smallest size's pair in the same blocks: the growth ratios come from one run."""
    rng = random.Random(layout.events)
    result: dict[str, Any] = {"events": layout.events, "load_before": load()}
    pairs = [("", side, layout)] + ([("ref-", *ref)] if ref is not None else [])
    append_groups: list[tuple[Callable[[], int], dict[str, Op]]] = []
    read_groups: list[tuple[Callable[[], int], dict[str, Op]]] = []
    for prefix, s, lay in pairs:
        for who in ("ek", "raw"):
            lay.versions.setdefault(who, {})
        append_groups.append(
            (
                lambda lay=lay: lay.appendable(rng),
                {
                    f"{prefix}ek": appender(lay.versions["ek"], s.ek_append),
                    f"{prefix}raw": appender(lay.versions["raw"], s.raw_append),
                },
            )
        )
        read_groups.append(
            (
                lambda lay=lay: lay.readable(rng),
                {f"{prefix}ek": s.ek_read, f"{prefix}raw": s.raw_read},
            )
        )
    for what, groups, count in (("append", append_groups, appends), ("read", read_groups, reads)):
        times = interleaved(count, groups)
        result[what] = {"eventkeep": percentiles(times["ek"]), "raw": percentiles(times["raw"])}
        if ref is not None:
            result[what]["ref"] = {
                "events": ref[1].events,
                "eventkeep": percentiles(times["ref-ek"]),
                "raw": percentiles(times["ref-raw"]),
            }
    ek_bytes, raw_bytes = side.sizes()
    total = layout.events + sum(v - STREAM_EVENTS for v in layout.versions["ek"].values())
    result["bytes_per_event"] = {
        "eventkeep": round(ek_bytes / total, 1),
        "raw": round(raw_bytes / total, 1),
        "ratio": round(ek_bytes / raw_bytes, 2),
    }
    columns = side.columns()
    if columns:
        result["column_bytes"] = columns
    server = plan_sample(pairs, rng, PLAN_SAMPLES)
    if server:
        result["read_server"] = server
    plans = side.explain(layout.readable(rng))
    if plans:
        result["explain"] = plans
    result["load_after"] = load()
    return result


def plan_sample(
    pairs: list[tuple[str, Side, Layout]], rng: random.Random, count: int
) -> dict[str, dict[str, float]]:
    """The stream read's server-side cost, ``count`` random streams per subject, alternating
    (eventkeep, floor, and the reference pair): medians of execution time, mean buffers."""
    samplers: list[tuple[str, Layout, Callable[[int], tuple[float, int, int]]]] = []
    for prefix, side, lay in pairs:
        for who, sample in side.plan_samplers().items():
            samplers.append((f"{prefix}{who}", lay, sample))
    if not samplers:
        return {}
    found: dict[str, list[tuple[float, int, int]]] = {name: [] for name, _, _ in samplers}
    for _ in range(count):
        keys = {id(lay): lay.readable(rng) for _, lay, _ in samplers}
        for name, lay, sample in samplers:
            found[name].append(sample(keys[id(lay)]))
    return {
        name: {
            "exec_us": round(statistics.median(r[0] for r in rows) * 1000, 1),
            "hit": round(statistics.fmean(r[1] for r in rows), 1),
            "read": round(statistics.fmean(r[2] for r in rows), 1),
        }
        for name, rows in found.items()
    }


def catch_up(side: Side) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": load()}
    for who, run in (("raw", side.raw_catch_up), ("eventkeep", side.ek_catch_up)):
        started = time.perf_counter()
        seen = run()
        took = time.perf_counter() - started
        out[who] = {"events": seen, "seconds": round(took, 1), "events_per_s": round(seen / took)}
    out["load_after"] = load()
    return out


def open_side(name: str, folder: Path, server: Any) -> Side:
    """A fresh eventkeep store and floor: files in ``folder``, or two new databases."""
    if name == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return SqliteSide(folder)
    import psycopg

    names = [f"growth_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("ek", "raw")]
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        for db in names:
            conn.execute(f"CREATE DATABASE {db}")
    base = server.admin_url.rsplit("/", 1)[0]
    return PostgresSide(f"{base}/{names[0]}", f"{base}/{names[1]}")


def run_backend(
    name: str, sizes: list[int], appends: int, reads: int, folder: Path, server: Any, budget: float
) -> dict[str, Any]:
    """Grow a pair (eventkeep, floor) through ``sizes``; measure each size beside a second pair
    that stays at the smallest size (the reference the growth ratios divide by)."""
    out: dict[str, Any] = {
        "sizes": [],
        "fill_budget_s": budget,
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": [round(x, 2) for x in os.getloadavg()],
    }
    ref_layout, layout = Layout(), Layout()
    ref_side = open_side(name, folder / "reference", server)
    side = open_side(name, folder / "growing", server)
    deadline = time.monotonic() + budget
    try:
        fill(ref_side, ref_layout, sizes[0], math.inf)
        ref_side.settle()
        for size in sizes:
            if time.monotonic() > deadline:
                out["not_reached"] = size
                break
            say(f"{name}: filling to {size:,} events (load {load()})")
            filled = fill(side, layout, size, deadline)
            out["settle"] = side.settle()
            say(f"{name}: filled {filled}; measuring at {layout.events:,} (load {load()})")
            measured = measure_size(side, layout, (ref_side, ref_layout), appends, reads)
            measured["fill"] = filled
            out["sizes"].append(measured)
            say(f"{name}: {json.dumps({k: v for k, v in measured.items() if k != 'explain'})}")
            if layout.events < size:
                out["not_reached"] = size
                break
        say(f"{name}: catch-up of {layout.events:,} events (load {load()})")
        out["catch_up"] = catch_up(side)
        say(f"{name}: catch-up {out['catch_up']}")
    finally:
        side.close()
        ref_side.close()
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument(
        "--budget",
        type=float,
        default=900.0,
        help="seconds of filling per backend; past it, the sizes not reached are skipped",
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="PostgreSQL: no VACUUM ANALYZE after each fill (a CHECKPOINT only)",
    )
    parser.add_argument(
        "--render", type=Path, nargs="+", help="write growth.md from these growth.json files"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few operations")
    parser.add_argument("--output", type=Path, default=None, help="folder for growth.md/json")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the SQLite files here (default: a temporary folder, deleted)",
    )
    args = parser.parse_args(argv)
    if args.render:
        merged: dict[str, Any] = {"backends": {}}
        for path in args.render:
            loaded = json.loads(path.read_text())
            merged.update({k: v for k, v in loaded.items() if k != "backends"})
            merged["backends"].update(loaded["backends"])
        output = args.output or RESULTS
        (output / "growth.md").write_text(markdown(merged) + "\n")
        (output / "growth.json").write_text(json.dumps(merged, indent=2) + "\n")
        say(f"written to {output}")
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.smoke:
        sizes, args.appends, args.reads = list(SMOKE_SIZES), 100, 200
    output = args.output or (Path(tempfile.mkdtemp()) if args.smoke else RESULTS)
    PostgresSide.vacuum = not args.no_vacuum
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores",
        "load_start": [round(x, 2) for x in os.getloadavg()],
        "backends": {},
    }
    server = None
    folder = args.keep or Path(tempfile.mkdtemp(prefix="eventkeep-growth-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.backends.split(","):
            if name == "postgres" and server is None:
                from benchmarks.pg import Server

                server = Server()
                results["postgres"] = {
                    "version": server.version,
                    "settings": server.settings,
                    "server": server.description,
                }
            results["backends"][name] = run_backend(
                name, sizes, args.appends, args.reads, folder, server, args.budget
            )
    finally:
        if server is not None:
            server.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    output.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (output / "growth.md").write_text(text + "\n")
    (output / "growth.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    say(f"written to {output}")


if __name__ == "__main__":
    main()
