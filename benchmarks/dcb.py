"""DCB benchmarks (docs/dcb.md): conditional appends and query reads, side by side in one run.

1. A conditional append (one event, two tags, a two-item query that passes) against a plain
   one-event stream append, on each backend (target: no slower than 1.2x).
2. The same conditional append on PostgreSQL against eventsourcing 9.5.6's DCB recorder
   (``eventsourcing.dcb.postgres_tt.PostgresDCBRecorderTT``), on the same server.
3. A query read (one student's 10 events) in stores of 10,000 / 100,000 / 1,000,000 tagged
   events (should stay flat).

Medians of interleaved repetitions; PostgreSQL is a throwaway durable cluster (``pg.py``) or
``$EVENTKEEP_BENCH_POSTGRES_URL``; SQLite files are in a temporary folder (synchronous=FULL).

::

    python -m benchmarks.dcb                       # everything (reads up to 1,000,000 events)
    python -m benchmarks.dcb --sizes 10000,100000  # smaller read sizes
    python -m benchmarks.dcb --ops 200 --repeats 3 --backends sqlite,postgres
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from eventkeep import AppendCondition, NewEvent, Query, QueryItem, RawEvent

STUDENT_EVENTS = 10
"""Events per student in the read stores: a read returns this many whatever the store's size."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


# -- 1 and 2: appends -------------------------------------------------------------------------


def plain_append(store: eventkeep.EventStore) -> Callable[[int], None]:
    run = uuid.uuid4().hex[:8]

    def op(n: int) -> None:
        store.append(f"user-{run}-{n}", [RawEvent("Registered", {"n": n})], expected_version=0)

    return op


def two_item_query(run: str, n: int) -> Query:
    return Query(
        [
            QueryItem(types=["UsernameClaimed", "UsernameReleased"], tags=[f"username:{run}{n}"]),
            QueryItem(types=["UserRegistered"], tags=[f"user:{run}{n}"]),
        ]
    )


def tagged_append(store: eventkeep.EventStore) -> Callable[[int], None]:
    run = uuid.uuid4().hex[:8]

    def op(n: int) -> None:
        event = NewEvent(
            RawEvent("UsernameClaimed", {"n": n}), tags=[f"username:{run}{n}", f"user:{run}{n}"]
        )
        store.append_events([event])

    return op


def conditional_append(store: eventkeep.EventStore) -> Callable[[int], None]:
    run = uuid.uuid4().hex[:8]
    head = store.head_position()

    def op(n: int) -> None:
        event = NewEvent(
            RawEvent("UsernameClaimed", {"n": n}), tags=[f"username:{run}{n}", f"user:{run}{n}"]
        )
        store.append_events([event], condition=AppendCondition(two_item_query(run, n), head))

    return op


def conditional_append_at_head(store: eventkeep.EventStore) -> Callable[[int], None]:
    """The conditional append of a decision that read its query and appended next: its
    condition's position is the position of this variant's previous append (the log's head,
    except at the first append of each chunk, after the other variants appended)."""
    run = uuid.uuid4().hex[:8]
    after = [store.head_position()]

    def op(n: int) -> None:
        event = NewEvent(
            RawEvent("UsernameClaimed", {"n": n}), tags=[f"username:{run}{n}", f"user:{run}{n}"]
        )
        condition = AppendCondition(two_item_query(run, n), after[0])
        after[0] = store.append_events([event], condition=condition).positions[-1]

    return op


def eventsourcing_append(recorder: Any) -> Callable[[int], None]:
    from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem

    run = uuid.uuid4().hex[:8]
    head = recorder.read(DCBQuery([]), limit=1).head or 0

    def op(n: int) -> None:
        query = DCBQuery(
            [
                DCBQueryItem(["UsernameClaimed", "UsernameReleased"], [f"username:{run}{n}"]),
                DCBQueryItem(["UserRegistered"], [f"user:{run}{n}"]),
            ]
        )
        event = DCBEvent("UsernameClaimed", b'{"n":1}', [f"username:{run}{n}", f"user:{run}{n}"])
        recorder.append([event], DCBAppendCondition(query, head))

    return op


def time_ops(op: Callable[[int], None], start: int, count: int) -> list[float]:
    samples = []
    for n in range(start, start + count):
        began = time.perf_counter()
        op(n)
        samples.append(time.perf_counter() - began)
    return samples


CHUNK = 10
"""Appends each variant makes in turn: the variants alternate every few appends, so that a
drift of the machine (the disk's flush time, other work) falls on all of them alike."""


def compare(variants: dict[str, Callable[[int], None]], ops: int, repeats: int) -> dict[str, float]:
    """Median µs per op of each variant, interleaved in chunks of ``CHUNK`` (one warm-up
    round)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for op in variants.values():
        time_ops(op, 10_000_000, 20)  # warm-up: connections, statements prepared
    for rep in range(repeats):
        for start in range(rep * ops, (rep + 1) * ops, CHUNK):
            for name, op in variants.items():
                samples[name] += time_ops(op, start, min(CHUNK, (rep + 1) * ops - start))
    return {name: median_us(values) for name, values in samples.items()}


@contextlib.contextmanager
def eventsourcing_recorder(target: Any) -> Iterator[Any]:
    from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
    from eventsourcing.postgres import PostgresDatastore

    datastore = PostgresDatastore(
        dbname=target.dbname,
        host=target.host,
        port=target.port,
        user=target.user,
        password="",
        schema="public",
        pool_size=2,
    )
    recorder = PostgresDCBRecorderTT(datastore)
    recorder.create_table()
    try:
        yield recorder
    finally:
        datastore.close()


def appends(backends: list[str], ops: int, repeats: int, server: Any, folder: Path) -> list[str]:
    lines = [
        "## Conditional append vs plain append (one event; median µs per append)",
        "",
        "- plain: `store.append(stream, [one event], expected_version=0)`, a new stream, no tags;",
        "- tagged: `store.append_events([the event with 2 tags])`, no condition (its own "
        "new `$dcb:` stream, the tags written with it and into the tag index);",
        "- conditional: the same tagged event, with `condition=AppendCondition(a 2-item query, "
        "after=P)`: one item of 2 types and a tag, one of 1 type and a tag, P the head before "
        "the run (so the check is a real probe of both items after P, finding nothing). The "
        "query is built per append, in the timed part.",
        "- at the head: the same, P the position of its own previous append (a decision that "
        "read and appended next; the log's head but at the first append of each chunk); "
        "SQLite then skips the probe.",
        f"- the variants alternate every {CHUNK} appends.",
        "",
        "| backend | plain one-event stream append | the event with 2 tags, no condition "
        "| the same with a condition (2-item query) | conditional / plain "
        "| conditional / tagged | conditional at the head | at the head / plain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    es_line: list[str] = []
    for backend in backends:
        say(f"appends on {backend} ...")
        with contextlib.ExitStack() as stack:
            if backend == "memory":
                url = "memory://"
            elif backend == "sqlite":
                url = f"sqlite:///{folder / f'appends-{uuid.uuid4().hex[:6]}.db'}"
            else:
                target = stack.enter_context(server.database())
                url = target.pg_url
            store = stack.enter_context(eventkeep.open_store(url))
            variants = {
                "plain": plain_append(store),
                "tagged": tagged_append(store),
                "conditional": conditional_append(store),
                "at-head": conditional_append_at_head(store),
            }
            if backend == "postgres":
                try:
                    recorder = stack.enter_context(eventsourcing_recorder(target))
                    variants["eventsourcing"] = eventsourcing_append(recorder)
                except ImportError as exc:
                    say(f"eventsourcing skipped: {exc}")
            result = compare(variants, ops, repeats)
        plain, tagged, conditional = result["plain"], result["tagged"], result["conditional"]
        lines.append(
            f"| {backend} | {plain:.0f} | {tagged:.0f} | {conditional:.0f} "
            f"| {conditional / plain:.2f}x | {conditional / tagged:.2f}x "
            f"| {result['at-head']:.0f} | {result['at-head'] / plain:.2f}x |"
        )
        if "eventsourcing" in result:
            es = result["eventsourcing"]
            es_line = [
                "",
                "## Conditional append on PostgreSQL: eventkeep vs eventsourcing 9.5.6",
                "",
                "| | median µs per append |",
                "|---|---:|",
                f"| eventkeep `append_events(condition=)` | {conditional:.0f} |",
                f"| eventsourcing `PostgresDCBRecorderTT.append(condition)` | {es:.0f} |",
                f"| eventsourcing / eventkeep | {es / conditional:.2f}x |",
            ]
    return lines + es_line


# -- 3: reads -----------------------------------------------------------------------------------


BLOCK = 10_000
"""Each block of this many events holds ``BLOCK // STUDENT_EVENTS`` students' events,
interleaved (a student's events are spread over the block)."""


def student_of(n: int) -> int:
    return n % (BLOCK // STUDENT_EVENTS) + (n // BLOCK) * (BLOCK // STUDENT_EVENTS)


def fill(store: eventkeep.EventStore, size: int) -> None:
    batch = 2000
    for start in range(store.head_position(), size, batch):
        store.append_events(
            [
                NewEvent(
                    RawEvent("StudentSubscribed", {"n": n}),
                    tags=[f"student:{student_of(n)}", f"course:{n % 97}"],
                )
                for n in range(start, min(size, start + batch))
            ]
        )


def reads(
    backends: list[str], sizes: list[int], repeats: int, server: Any, folder: Path
) -> list[str]:
    lines = [
        "",
        f"## Query reads: one student's {STUDENT_EVENTS} events (median µs per read)",
        "",
        "| backend | " + " | ".join(f"{size:,} events" for size in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for backend in backends:
        if backend == "memory":
            continue  # the specification scans the log: not meant to stay flat
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'reads.db'}"
            else:
                url = stack.enter_context(server.database()).pg_url
            store = stack.enter_context(
                eventkeep.open_store(url, synchronous="OFF")
                if backend == "sqlite"
                else eventkeep.open_store(url)
            )
            cells = []
            for size in sizes:
                say(f"reads on {backend}: filling to {size:,} events ...")
                fill(store, size)
                students = size // STUDENT_EVENTS
                samples = []
                for rep in range(repeats * 100):
                    student = (rep * 7919) % students
                    query = Query(
                        [QueryItem(types=["StudentSubscribed"], tags=[f"student:{student}"])]
                    )
                    began = time.perf_counter()
                    found = store.read(query)
                    samples.append(time.perf_counter() - began)
                    assert len(found) == STUDENT_EVENTS, (len(found), student)
                cells.append(f"{median_us(samples):.0f}")
            lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres")
    parser.add_argument("--ops", type=int, default=300, help="appends per variant and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="multiples of 10,000")
    parser.add_argument("--skip-reads", action="store_true")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    server = None
    if "postgres" in backends:
        from benchmarks.pg import Server

        server = Server()
    try:
        with tempfile.TemporaryDirectory(prefix="eventkeep-dcb-bench-") as tmp:
            print("\n".join(appends(backends, args.ops, args.repeats, server, Path(tmp))))
            if not args.skip_reads:
                print("\n".join(reads(backends, sizes, args.repeats, server, Path(tmp))))
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
