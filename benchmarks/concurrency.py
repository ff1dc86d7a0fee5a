"""Concurrent writers on PostgreSQL: N OS processes running the command loop at once.

For each system, a pool of writer processes (``spawn``) is started once per run, each with
its own store or application (its own connections); they stay up across the levels so that
start-up is not timed. A level hands ``n`` of them a task, waits until all have prepared
(created their accounts), and gives one common start time; each then runs commands for
``seconds`` and reports how many it completed, their latencies and the conflicts it retried.

- ``writers_N``: N processes on distinct streams (``ACCOUNTS_PER_WRITER_SECOND`` accounts per
  second of the level each, round robin).
- ``hot_N``: N processes on one account: a command that loses the race (the system's conflict
  error) is retried (reload, deposit, save) until it succeeds; its latency includes the retries.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from typing import Any

from benchmarks.systems.base import Target
from benchmarks.workloads import SETUP_GROUP, measure, percentiles

ACCOUNTS_PER_WRITER_SECOND = 100
"""Accounts each writer cycles through per second of its level (20 at least): a writer making
up to ~1,000 commands a second gives each of them up to ~10 events a level, so the streams it
loads are about as long as the in-process command loop's (an account and up to 10 deposits).
Until 2026-11-30 (session 13) each writer cycled through 20 accounts whatever the level's
length: in 3 s levels its streams grew to ~100 events, and every system's writers were slower
than its in-process loop (the raw floor's most: it fetches every row of the stream)."""
_START_DELAY = 0.3
_TIMEOUT = 180.0


def make_subject(system: str, target: Target, *, create_tables: bool = True) -> Any:
    """The adapter of ``system`` on ``target``; writers pass ``create_tables=False``: their
    tables exist already, and concurrent ``CREATE TABLE IF NOT EXISTS`` can fail on PostgreSQL.
    eventkeep's migrations need no write when the schema is current."""
    if system == "eventkeep":
        from benchmarks.systems.ek import EventkeepSubject

        return EventkeepSubject(target)
    if system == "eventsourcing":
        from benchmarks.systems.es import EventsourcingSubject

        return EventsourcingSubject(target, create_tables=create_tables)
    if system == "raw-min":
        from benchmarks.systems.raw_min import RawMinPostgresSubject, RawMinSQLiteSubject

        cls = RawMinSQLiteSubject if target.backend == "sqlite" else RawMinPostgresSubject
        return cls(target, create_tables=create_tables)
    if target.backend == "sqlite":
        from benchmarks.systems.raw import RawSQLiteSubject

        return RawSQLiteSubject(target, create_tables=create_tables)
    from benchmarks.systems.raw import RawPostgresSubject

    return RawPostgresSubject(target, create_tables=create_tables)


def _writer(system: str, target: Target, tasks: Any, results: Any, index: int) -> None:
    """A writer process: prepare/run tasks from ``tasks`` until it gets None."""
    try:
        subject = make_subject(system, target, create_tables=False)
    except Exception:
        results.put((index, "error", traceback.format_exc()))
        return
    created: set[str] = set()
    try:
        while True:
            task = tasks.get(timeout=_TIMEOUT * 2)
            if task is None:
                return
            try:
                if task["phase"] == "prepare":
                    new = [key for key in task["keys"] if key not in created and key != "hot"]
                    for start in range(0, len(new), SETUP_GROUP):  # untimed: in bulk
                        subject.create_many(new[start : start + SETUP_GROUP], 1, task["reference"])
                    created.update(new)
                    results.put((index, "ready", None))
                else:
                    results.put((index, "done", _run(subject, task)))
            except Exception:
                results.put((index, "error", traceback.format_exc()))
    finally:
        subject.close()


def _run(subject: Any, task: dict[str, Any]) -> dict[str, Any]:
    keys, reference = task["keys"], task["reference"]
    start, stop = task["start"], task["start"] + task["seconds"]
    conflict = subject.conflict
    latencies: list[float] = []
    conflicts = 0
    while time.time() < start:
        time.sleep(0.0005)
    n = 0
    clock = time.perf_counter
    while time.time() < stop:
        key = keys[n % len(keys)]
        began = clock()
        while True:
            try:
                subject.command(key, reference)
                break
            except conflict:
                conflicts += 1
                if time.time() > stop + 30:
                    raise
        latencies.append(clock() - began)
        n += 1
    return {"latencies": latencies, "conflicts": conflicts, "ended": time.time()}


class WriterPool:
    """``size`` writer processes of one system against one database."""

    def __init__(self, system: str, target: Target, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in range(size)]
        self.procs = [
            ctx.Process(
                target=_writer,
                args=(system, target, self.tasks[i], self.results, i),
                daemon=True,
                name=f"bench-writer-{system}-{i}",
            )
            for i in range(size)
        ]
        for proc in self.procs:
            proc.start()

    def _collect(self, count: int, kind: str, timeout: float) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            try:
                left = max(0.1, deadline - time.monotonic())
                index, status, payload = self.results.get(timeout=left)
            except queue.Empty:
                raise RuntimeError(f"writer processes did not report {kind!r} in time") from None
            if status == "error":
                raise RuntimeError(f"writer process {index} failed:\n{payload}")
            got.append(payload)
        return got

    def level(
        self, workload: str, keys: list[list[str]], seconds: float, reference: str
    ) -> dict[str, Any]:
        writers = len(keys)
        for i in range(writers):
            self.tasks[i].put({"phase": "prepare", "keys": keys[i], "reference": reference})
        self._collect(writers, "ready", _TIMEOUT)
        start = time.time() + _START_DELAY
        for i in range(writers):
            self.tasks[i].put(
                {
                    "phase": "run",
                    "keys": keys[i],
                    "reference": reference,
                    "start": start,
                    "seconds": seconds,
                }
            )
        done = self._collect(writers, "done", seconds + _TIMEOUT)
        latencies = [x for d in done for x in d["latencies"]]
        elapsed = max(d["ended"] for d in done) - start
        row = measure(
            workload,
            len(latencies) / elapsed,
            "events/s",
            writers=writers,
            conflicts=sum(d["conflicts"] for d in done),
            commands=len(latencies),
        )
        if latencies:
            row.update(percentiles(latencies))
        return row

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)


def run_writers(
    targets: dict[str, Target],
    levels: tuple[int, ...],
    hot: int,
    seconds: float,
    reference: str,
    turn: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """Every level of every system (``targets``: each system's fresh database): distinct
    streams at each level, then the hot one. The systems take turns level by level, each
    level's order rotated (``turn`` picks who goes first), so that a level's systems run
    seconds apart on the same machine; each system's writer processes wait idle meanwhile."""
    systems = list(targets)
    pools: dict[str, WriterPool] = {}
    try:
        for system in systems:
            setup = make_subject(system, targets[system])  # the schema, before the writers
            try:
                setup.create("hot", reference)
            finally:
                setup.close()
            pools[system] = WriterPool(system, targets[system], max((*levels, hot)))
        accounts = max(20, round(ACCOUNTS_PER_WRITER_SECOND * seconds))
        steps = [
            (f"writers_{n}", [[f"w{n}-{i}-{k}" for k in range(accounts)] for i in range(n)])
            for n in levels
        ]
        if hot:
            steps.append((f"hot_{hot}", [["hot"]] * hot))
        rows: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
        for step, (workload, keys) in enumerate(steps):
            shift = (turn + step) % len(systems)
            for system in systems[shift:] + systems[:shift]:
                rows[system].append(pools[system].level(workload, keys, seconds, reference))
        return rows
    finally:
        for pool in pools.values():
            pool.close()
