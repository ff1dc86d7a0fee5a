"""Copy benchmark (docs/moving.md): ``eventkeep copy`` SQLite -> PostgreSQL, and back.

A SQLite store of ``--events`` events (200,000 by default: 256-byte-ish data, 1 event in 5
tagged, streams of 10 events) is copied into an empty PostgreSQL store with
:func:`eventkeep.moving.copy_store`, then that store into a new SQLite file; events per second
of each copy, each copy verified. Beside them, in the same run, the ceiling the schema allows
here: the same rows, already in memory, sent by binary COPY into an empty store's events
table with no check and no head or tag written (what the server costs alone: five indexes,
the triggers, the commits). ``--profile`` prints the top of a cProfile of the
first copy. PostgreSQL is a throwaway durable cluster (``pg.py``) or
``$EVENTKEEP_BENCH_POSTGRES_URL``.

::

    python -m benchmarks.copying
    python -m benchmarks.copying --events 50000 --batch 5000 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from benchmarks.pg_costs import _BACKENDS, cpu_seconds
from eventkeep import NewEvent, RawEvent, StreamAppend
from eventkeep.moving import copy_store

STREAM_EVENTS = 10


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fill(store: eventkeep.EventStore, events: int) -> None:
    """``events`` events in streams of STREAM_EVENTS, appended 1,000 per transaction."""
    note = "x" * 180
    made = 0
    while made < events:
        appends = []
        for _ in range(100):
            stream = f"account-{made // STREAM_EVENTS}"
            items = [
                NewEvent(
                    RawEvent("Deposited", {"amount": f"{n}.00", "reference": note, "n": n}),
                    tags=[f"account:{made // STREAM_EVENTS}"] if n % 5 == 0 else None,
                )
                for n in range(STREAM_EVENTS)
            ]
            appends.append(StreamAppend(stream, items))
            made += STREAM_EVENTS
            if made >= events:
                break
        store.append_many(appends)


class Costs:
    """Wall time, and CPU seconds of this process (every thread) and of the PostgreSQL
    server's backends (``/proc``; 0 when the server is not on this machine): CPU is what a
    busy machine inflates least, and it says which side a copy waits for."""

    def __init__(self, pg_url: str | None) -> None:
        self._observer = None if pg_url is None else _observer(pg_url)
        self.wall = self.client = self.server = 0.0

    def _server_cpu(self) -> dict[int, float]:
        """CPU seconds per live backend of the database, and under key 0 the CPU of the
        server's processes that ended (the postmaster's reaped children: a copy's own
        connection, parallel index-build workers)."""
        if self._observer is None:
            return {}
        pids = [row[0] for row in self._observer.execute(cast(Any, _BACKENDS))]
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                found[pid] = cpu_seconds(pid)
        if pids:
            with contextlib.suppress(OSError):
                found[0] = _reaped_cpu_seconds(pids[0])
        return found

    def __enter__(self) -> Costs:
        self._server = self._server_cpu()
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._started[0]
        self.client = time.process_time() - self._started[1]
        time.sleep(1.0)  # the postmaster reaps the backends of connections just closed
        after = self._server_cpu()
        self.server = sum(cpu - self._server.get(pid, 0.0) for pid, cpu in after.items())
        if self._observer is not None:
            self._observer.close()

    def per_event(self, events: int) -> str:
        return (
            f"client CPU {self.client / events * 1e6:.1f} µs/event, "
            f"server CPU {self.server / events * 1e6:.1f} µs/event"
        )


def _reaped_cpu_seconds(backend: int) -> float:
    """The CPU seconds of the ended children of ``backend``'s parent (the postmaster)."""
    parent = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1]
    fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def _observer(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def timed_copy(
    source: str, target: str, batch: int, profile: bool, pg_url: str | None = None
) -> tuple[float, int, Costs]:
    with eventkeep.open_store(source) as src, eventkeep.open_store(target) as dst:
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        with Costs(pg_url) as costs:
            report = copy_store(src, dst, batch_size=batch)
        if profiler is not None:
            profiler.disable()
        took = costs.wall
        if profiler is not None:
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        verified = dst.verify(deep=False)
        if not verified.ok:
            raise SystemExit(f"the copy in {target} does not verify: {verified.broken[:3]}")
        if list(src.export()) != list(dst.export()):
            raise SystemExit("the copy differs from its source")
        return took, report.written, costs


def raw_copy(source: str, target: str, batch: int) -> tuple[float, Costs]:
    """Events per second of a bare binary COPY of the source's rows into ``target``'s events
    table, ``batch`` rows per transaction (the rows read beforehand, not timed)."""
    import psycopg
    from psycopg.adapt import PyFormat

    from eventkeep.backends.postgres import sql
    from eventkeep.backends.postgres.moving import PG_EPOCH_US

    with eventkeep.open_store(source) as src:
        rows = [
            (
                r.position,
                r.stream_id,
                r.version,
                r.event_id,
                r.type,
                r.schema_version,
                r.recorded_at_us - PG_EPOCH_US,
                r.data,
                r.metadata,
                r.hash,
                None,
            )
            for r in src.export()
        ]
    eventkeep.open_store(target).close()
    with psycopg.connect(target, autocommit=True) as conn, Costs(target) as costs:
        conn.execute("SET search_path TO eventkeep")
        for start in range(0, len(rows), batch):
            cur = conn.cursor()
            cur.adapters.register_dumper(bytes, cur.adapters.get_dumper(bytes, PyFormat.BINARY))
            with conn.transaction(), cur.copy(sql.COPY_EVENTS) as copy:
                copy.set_types(list(sql.COPY_EVENT_TYPES))
                for row in rows[start : start + batch]:
                    copy.write_row(row)
    return len(rows) / costs.wall, costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    from benchmarks.pg import Server

    server = Server()
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            contextlib.ExitStack() as stack,
        ):
            source = f"sqlite:///{Path(folder) / 'source.db'}"
            say(f"filling {source} with {args.events:,} events ...")
            with eventkeep.open_store(source, synchronous="OFF") as store:
                fill(store, args.events)
            target = stack.enter_context(server.database()).pg_url
            say(f"PostgreSQL {server.version}: {server.description}")
            say(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            took, written, costs = timed_copy(
                source, target, args.batch, args.profile, pg_url=target
            )
            print(
                f"SQLite -> PostgreSQL: {written:,} events in {took:.2f} s = "
                f"{written / took:,.0f} events/s (batch {args.batch}); "
                f"{costs.per_event(written)}"
            )
            ceiling = stack.enter_context(server.database()).pg_url
            rate, raw = raw_copy(source, ceiling, args.batch)
            print(
                f"bare COPY into the events table (the ceiling): {rate:,.0f} events/s; "
                f"{raw.per_event(written)}; copy_store reached {written / took / rate:.2f}x of it"
            )
            back = f"sqlite:///{Path(folder) / 'back.db'}"
            took, written, costs = timed_copy(target, back, args.batch, False)
            print(
                f"PostgreSQL -> SQLite: {written:,} events in {took:.2f} s = "
                f"{written / took:,.0f} events/s (batch {args.batch}); "
                f"{costs.per_event(written)}"
            )
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
