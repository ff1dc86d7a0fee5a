"""The in-process workloads, written once over the ``Subject`` methods every system implements.

:func:`run_side_by_side` runs the selected workloads, in this order, for several systems at
once, each on its own fresh database, the systems taking turns chunk by chunk within every timed
loop (:class:`_Turns`); :func:`run_suite` runs them for one system (timed parts only where
marked):

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

import contextlib
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
    writer_seconds: float = 3.0
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
    return run_side_by_side(
        {"subject": subject},
        sizes,
        reference,
        {"subject": workloads},
        timed,
        {"subject": another},
    )["subject"]


CHUNKS = {"create": 10, "command": 10, "command_other": 10, "batch": 10, "rehydrate": 10}
"""Into how many chunks each timed loop is cut (``command``: per round) for the side-by-side
runs: the subjects take turns chunk by chunk."""


class _Turns:
    """The timed loops of several subjects, run in turns: chunk by chunk, each chunk by every
    subject before the next chunk, the subjects' order rotated from one chunk to the next.
    A shared machine's speed drifts by tens of percent over seconds; systems measured in
    turns a fraction of a second apart see the same machine, and their ratio with it."""

    def __init__(
        self, names: list[str], timed: Callable[[], AbstractContextManager[Any]], start: int
    ) -> None:
        self.names = names
        self.timed = timed
        self.turn = start  # rotates the order: a different subject goes first each chunk

    def run(
        self, ops: dict[str, Callable[[Any], object]], items: list[Any], chunks: int
    ) -> dict[str, tuple[float, list[float]]]:
        """``ops[name](item)`` for every item, for every subject in ``ops``; per subject, the
        seconds the loop took and the latency of every call."""
        clock = time.perf_counter
        elapsed = dict.fromkeys(ops, 0.0)
        latencies: dict[str, list[float]] = {name: [] for name in ops}
        names = [name for name in self.names if name in ops]
        size = max(1, -(-len(items) // max(1, chunks)))
        for first in range(0, len(items), size):
            part = items[first : first + size]
            shift = self.turn % len(names)
            self.turn += 1
            for name in names[shift:] + names[:shift]:
                op, lat = ops[name], latencies[name]
                with self.timed():
                    started = clock()
                    for item in part:
                        begun = clock()
                        op(item)
                        lat.append(clock() - begun)
                    elapsed[name] += clock() - started
        return {name: (elapsed[name], latencies[name]) for name in ops}


def run_side_by_side(
    subjects: dict[str, Subject],
    sizes: Sizes,
    reference: str,
    workloads: dict[str, set[str]],
    timed: Callable[[], AbstractContextManager[Any]] = nullcontext,
    another: dict[str, Callable[[], Subject] | None] | None = None,
    turn: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """Run each subject's selected suite workloads (``workloads[name]``) on its own fresh
    store, the subjects in turns (:class:`_Turns`; ``turn`` picks who goes first); one
    measurement per subject and workload. ``another[name]`` makes a second subject on that
    subject's database (``command_other`` needs it)."""
    names = list(subjects)
    turns = _Turns(names, timed, turn)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    written = dict.fromkeys(names, 0)
    keys = [f"acc{n}" for n in range(sizes.accounts)]

    def having(*wanted: str) -> list[str]:
        return [name for name in names if workloads[name] & set(wanted)]

    def record(workload: str, runs: dict[str, tuple[float, list[float]]], count: int) -> None:
        for name, (elapsed, lat) in runs.items():
            written[name] += count
            if workload in workloads[name]:
                out[name].append(measure(workload, count / elapsed, "events/s", lat))

    creating = having("create", "command", "command_other")
    if creating:
        ops = {name: _bound(subjects[name].create, reference) for name in creating}
        record("create", turns.run(ops, keys, CHUNKS["create"]), len(keys))

    commanding = having("command")
    if commanding:
        ops = {name: _bound(subjects[name].command, reference) for name in commanding}
        rounds = [turns.run(ops, keys, CHUNKS["command"]) for _ in range(sizes.commands)]
        merged = {
            name: (
                sum(r[name][0] for r in rounds),
                [x for r in rounds for x in r[name][1]],
            )
            for name in commanding
        }
        record("command", merged, len(keys) * sizes.commands)

    others = [name for name in having("command_other") if another and another.get(name)]
    if others:
        with contextlib.ExitStack() as stack:
            seconds: dict[str, Subject] = {}
            for name in others:
                make = another[name] if another else None
                assert make is not None
                other = seconds[name] = make()
                stack.callback(other.close)
                other.command(keys[0], reference)  # its connections and the server's clock
            ops = {name: _bound(seconds[name].command, reference) for name in others}
            runs = turns.run(ops, keys[1:], CHUNKS["command_other"])
        for name in others:
            written[name] += 1
        record("command_other", runs, len(keys) - 1)

    batching = having("batch")
    if batching:
        ops = {
            name: _bound(subjects[name].create_with, sizes.batch_size, reference)
            for name in batching
        }
        runs = turns.run(ops, [f"batch{n}" for n in range(sizes.batches)], CHUNKS["batch"])
        record("batch", runs, sizes.batches * sizes.batch_size)

    rehydrating = having("rehydrate")
    if rehydrating:
        loaded = [f"reh{n}" for n in range(sizes.rehydrate)]
        for name in rehydrating:
            for group in _groups(loaded, SETUP_GROUP):
                subjects[name].create_many(group, sizes.rehydrate_events, reference)
            written[name] += len(loaded) * sizes.rehydrate_events
        ops = {name: _checked(subjects[name].load, sizes.rehydrate_events) for name in rehydrating}
        for name, (elapsed, lat) in turns.run(ops, loaded, CHUNKS["rehydrate"]).items():
            out[name].append(measure("rehydrate", len(loaded) / elapsed, "aggregates/s", lat))

    reading = having("read_all")
    if reading:
        for name in reading:
            top_up = max(0, sizes.log_events - written[name]) // 100
            for group in _groups([f"log{n}" for n in range(top_up)], SETUP_GROUP):
                subjects[name].create_many(group, 100, reference)
            written[name] += top_up * 100
            _check(subjects[name].read_all(), written[name])  # warm-up (caches)
        counts: dict[str, int] = {}

        def read(name: str) -> None:
            counts[name] = subjects[name].read_all()

        ops = {name: (lambda _item, name=name: read(name)) for name in reading}
        for name, (elapsed, _) in turns.run(ops, [None], 1).items():
            _check(counts[name], written[name])
            out[name].append(
                measure("read_all", counts[name] / elapsed, "events/s", events=counts[name])
            )

    long = having("long")
    if long:
        for name in long:
            for key in ("long-a", "long-b"):
                subjects[name].create_with(key, sizes.long_events, reference)
        _long_loads(turns, subjects, long, "long", "long-a", sizes, out)
        snapshotted = [name for name in long if subjects[name].take_snapshot("long-b")]
        if snapshotted:
            _long_loads(turns, subjects, snapshotted, "long_snapshot", "long-b", sizes, out)
    return out


def _bound(method: Callable[..., object], *args: Any) -> Callable[[Any], object]:
    """``method(item, *args)`` as a one-argument op."""
    return lambda item: method(item, *args)


def _checked(load: Callable[[str], int], expected: int) -> Callable[[Any], object]:
    return lambda key: _check(load(key), expected)


def _long_loads(
    turns: _Turns,
    subjects: dict[str, Subject],
    names: list[str],
    workload: str,
    key: str,
    sizes: Sizes,
    out: dict[str, list[dict[str, Any]]],
) -> None:
    """``long_loads`` timed loads of ``key`` per subject, in turns, after one warm-up each;
    the median load, in milliseconds."""
    loads = {
        name: subjects[name].load if workload == "long" else subjects[name].load_snapshotted
        for name in names
    }
    for name in names:
        _check(loads[name](key), sizes.long_events)  # warm-up
    ops = {name: _checked(loads[name], sizes.long_events) for name in names}
    runs = turns.run(ops, [key] * sizes.long_loads, sizes.long_loads)
    for name, (_, lat) in runs.items():
        out[name].append(measure(workload, statistics.median(lat) * 1000, "ms"))


def _groups(keys: list[str], size: int) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def _check(actual: int, expected: int) -> None:
    if actual != expected:
        raise AssertionError(f"the benchmark read {actual} events/versions, expected {expected}")
