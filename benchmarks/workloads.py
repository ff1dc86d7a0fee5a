"""The in-process workloads, written once over the ``Subject`` methods every system implements.

One call of :func:`run_suite` runs the selected workloads, in this order, on one fresh
database of one system (timed parts only where marked):

- ``create``: open ``accounts`` accounts, one event and one transaction each (timed).
- ``command``: ``commands`` rounds over those accounts: load, deposit, save 1 event (timed,
  with the latency of every command).
- ``command_other``: the same loop, one round, run by a second subject on the same database
  (``another()``: a new store, application or connection), as a process that did not write the
  accounts runs it: eventkeep's PostgreSQL store appends in one round trip only to streams whose
  heads it learned, from its own appends or from reads (timed).
- ``batch``: ``batches`` new accounts of ``batch_size`` events, one transaction each (timed).
- ``rehydrate``: ``rehydrate`` accounts of ``rehydrate_events`` events are written (untimed,
  10 accounts per transaction), then each is loaded once (timed).
- ``read_all``: the log is topped up to ``log_events`` events with 100-event accounts (untimed,
  10 accounts per transaction), read once to warm up, then read and decoded to typed events
  (timed).
- ``long``: two accounts of ``long_events`` events; the first is loaded from its events, the
  second from a snapshot at its last version (``long_loads`` timed loads each, after one warm-up).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from benchmarks.systems.base import Subject

SUITE = ("create", "command", "command_other", "batch", "rehydrate", "read_all", "long")
CONCURRENT = ("writers",)
CATCH_UP = ("catchup",)
ALL = (*SUITE, *CONCURRENT, *CATCH_UP)
SETUP_GROUP = 10
"""Untimed setup saves this many accounts per transaction (``Subject.create_many``)."""


@dataclass(frozen=True)
class Sizes:
    accounts: int = 1000
    commands: int = 10
    batches: int = 100
    batch_size: int = 100
    rehydrate: int = 1000
    rehydrate_events: int = 10
    log_events: int = 50_000
    long_events: int = 10_000
    long_loads: int = 5
    catchup_events: int = 1_000_000
    catchup_streams: int = 1000
    writer_levels: tuple[int, ...] = (1, 2, 4, 8)
    hot_writers: int = 4
    writer_seconds: float = 1.0
    repeats: int = 3


FULL = Sizes()
QUICK = replace(
    FULL,
    accounts=100,
    commands=3,
    batches=10,
    rehydrate=100,
    log_events=3000,
    long_events=2000,
    long_loads=2,
    catchup_events=20_000,
    catchup_streams=100,
    writer_levels=(1, 4),
    writer_seconds=0.5,
    repeats=1,
)


def measure(
    workload: str, value: float, unit: str, latencies: list[float] | None = None, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"workload": workload, "value": value, "unit": unit, **extra}
    if latencies:
        row.update(percentiles(latencies))
    return row


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    last = len(ordered) - 1
    return {
        "p50_ms": ordered[last // 2] * 1000,
        "p99_ms": ordered[min(last, round(last * 0.99))] * 1000,
    }


def _timed(fn: Callable[[], None], latencies: list[float]) -> None:
    started = time.perf_counter()
    fn()
    latencies.append(time.perf_counter() - started)


def run_suite(
    subject: Subject,
    sizes: Sizes,
    reference: str,
    workloads: set[str],
    timed: Callable[[], AbstractContextManager[Any]] = nullcontext,
    another: Callable[[], Subject] | None = None,
) -> list[dict[str, Any]]:
    """Run the selected suite workloads on a fresh store; one measurement per workload.

    ``timed`` wraps every timed section (the profiler uses it to leave the setup out);
    ``another`` makes a second subject on the same database (``command_other`` needs it).
    """
    out: list[dict[str, Any]] = []
    written = 0
    clock = time.perf_counter
    keys = [f"acc{n}" for n in range(sizes.accounts)]

    if workloads & {"create", "command", "command_other"}:
        lat: list[float] = []
        with timed():
            started = clock()
            for key in keys:
                _timed(lambda key=key: subject.create(key, reference), lat)
            elapsed = clock() - started
        written += len(keys)
        if "create" in workloads:
            out.append(measure("create", len(keys) / elapsed, "events/s", lat))

    if "command" in workloads:
        lat = []
        with timed():
            started = clock()
            for _round in range(sizes.commands):
                for key in keys:
                    _timed(lambda key=key: subject.command(key, reference), lat)
            elapsed = clock() - started
        written += len(lat)
        out.append(measure("command", len(lat) / elapsed, "events/s", lat))

    if "command_other" in workloads and another is not None:
        other = another()
        try:
            other.command(keys[0], reference)  # its connections and the server's clock
            lat = []
            with timed():
                started = clock()
                for key in keys[1:]:
                    _timed(lambda key=key: other.command(key, reference), lat)
                elapsed = clock() - started
        finally:
            other.close()
        written += len(lat) + 1
        out.append(measure("command_other", len(lat) / elapsed, "events/s", lat))

    if "batch" in workloads:
        lat = []
        with timed():
            started = clock()
            for n in range(sizes.batches):
                _timed(
                    lambda n=n: subject.create_with(f"batch{n}", sizes.batch_size, reference), lat
                )
            elapsed = clock() - started
        written += sizes.batches * sizes.batch_size
        rate = sizes.batches * sizes.batch_size / elapsed
        out.append(measure("batch", rate, "events/s", lat))

    if "rehydrate" in workloads:
        loaded = [f"reh{n}" for n in range(sizes.rehydrate)]
        for group in _groups(loaded, SETUP_GROUP):
            subject.create_many(group, sizes.rehydrate_events, reference)
        written += len(loaded) * sizes.rehydrate_events
        lat = []
        with timed():
            started = clock()
            for key in loaded:
                _timed(lambda key=key: _check(subject.load(key), sizes.rehydrate_events), lat)
            elapsed = clock() - started
        out.append(measure("rehydrate", len(loaded) / elapsed, "aggregates/s", lat))

    if "read_all" in workloads:
        top_up = max(0, sizes.log_events - written) // 100
        for group in _groups([f"log{n}" for n in range(top_up)], SETUP_GROUP):
            subject.create_many(group, 100, reference)
        written += top_up * 100
        _check(subject.read_all(), written)  # warm-up (page cache, statement caches)
        with timed():
            started = clock()
            count = subject.read_all()
            elapsed = clock() - started
        _check(count, written)
        out.append(measure("read_all", count / elapsed, "events/s", events=count))

    if "long" in workloads:
        for key in ("long-a", "long-b"):
            subject.create_with(key, sizes.long_events, reference)
        with timed():
            out.append(_long_loads(subject, "long", "long-a", subject.load, sizes))
        if subject.take_snapshot("long-b"):
            with timed():
                out.append(
                    _long_loads(subject, "long_snapshot", "long-b", subject.load_snapshotted, sizes)
                )
    return out


def _long_loads(
    subject: Subject, workload: str, key: str, load: Callable[[str], int], sizes: Sizes
) -> dict[str, Any]:
    _check(load(key), sizes.long_events)  # warm-up
    times = []
    for _ in range(sizes.long_loads):
        started = time.perf_counter()
        version = load(key)
        times.append((time.perf_counter() - started) * 1000)
        _check(version, sizes.long_events)
    return measure(workload, statistics.median(times), "ms")


def _groups(keys: list[str], size: int) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def _check(actual: int, expected: int) -> None:
    if actual != expected:
        raise AssertionError(f"the benchmark read {actual} events/versions, expected {expected}")
