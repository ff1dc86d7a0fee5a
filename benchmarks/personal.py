"""The cost of one personal field per event (crypto-shredding, docs/erasure.md), side by side.

The same event shape twice: ``bench.Registered`` with ``email`` marked ``Personal`` (encrypted
with its subject's AES-GCM key on append, revealed on read) and ``bench.RegisteredPlain`` with
a plain ``email``. Target: at most 1.2x on appends and on reads.

1. Appends: one event per append, to streams of 1,000 subjects whose keys exist (the usual
   case: a customer's later events), plain and personal interleaved; and, on its own line, the
   first append of a brand-new subject (its key is created then: one extra write).
2. Reads (the "floor" column: the plain read plus the base64 decode and the AES-GCM
   decryption that revealing one field cannot skip, measured in the same run): the log of N
   events of each kind read with ``read_all(types=...)`` and decoded (``.event``), warm (the
   key cache filled) and cold (a new store handle: keys fetched once per page); raw ``.data``
   reads; and a hot stream of 100 events read again and again (an aggregate reloaded for each
   command: its data comes from the revealed-data cache).

Medians; appends alternate op by op, reads pass by pass; SQLite files in a temporary folder
(synchronous=FULL); PostgreSQL is a throwaway durable cluster (``pg.py``) or
``$EVENTKEEP_BENCH_POSTGRES_URL``.

::

    python -m benchmarks.personal                              # memory, sqlite
    python -m benchmarks.personal --backends memory,sqlite,postgres
    python -m benchmarks.personal --ops 300 --repeats 5 --events 20000
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
from typing import Annotated, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from eventkeep import Personal

SUBJECTS = 1000


class Registered(eventkeep.Event):
    __event_type__ = "bench.Registered"

    customer_id: str
    email: Annotated[str, Personal(subject="customer_id")]
    plan: str = "basic"


class RegisteredPlain(eventkeep.Event):
    __event_type__ = "bench.RegisteredPlain"

    customer_id: str
    email: str
    plan: str = "basic"


KINDS: dict[str, type[eventkeep.Event]] = {"plain": RegisteredPlain, "personal": Registered}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def event(kind: str, n: int) -> eventkeep.Event:
    subject = f"customer-{n % SUBJECTS}"
    return KINDS[kind](customer_id=subject, email=f"person{n}@example.com")  # type: ignore[call-arg]


def appender(store: eventkeep.EventStore, kind: str) -> Callable[[int], None]:
    run = uuid.uuid4().hex[:6]

    def op(n: int) -> None:
        store.append(f"{kind}-{run}-{n % SUBJECTS}", [event(kind, n)])

    return op


def new_subject_appender(store: eventkeep.EventStore, kind: str) -> Callable[[int], None]:
    run = uuid.uuid4().hex[:6]

    def op(n: int) -> None:
        subject = f"new-{run}-{n}"
        item = KINDS[kind](customer_id=subject, email=f"{subject}@example.com")  # type: ignore[call-arg]
        store.append(f"{kind}-{subject}", [item])

    return op


def time_ops(op: Callable[[int], None], start: int, count: int) -> list[float]:
    samples = []
    for n in range(start, start + count):
        began = time.perf_counter()
        op(n)
        samples.append(time.perf_counter() - began)
    return samples


def compare(variants: dict[str, Callable[[int], None]], ops: int, repeats: int) -> dict[str, float]:
    """Median µs per op of each variant, the variants alternating op by op (so that a busy
    moment of the machine hits both alike), after a warm-up round that also creates the keys
    of the SUBJECTS subjects."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for op in variants.values():
        time_ops(op, 0, SUBJECTS)
    for n in range(SUBJECTS, SUBJECTS + ops * repeats):
        for name, op in variants.items():
            samples[name] += time_ops(op, n, 1)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


@contextlib.contextmanager
def opened(backend: str, folder: Path, server: Any) -> Iterator[tuple[str, Any]]:
    with contextlib.ExitStack() as stack:
        if backend == "memory":
            url = "memory://"
        elif backend == "sqlite":
            url = f"sqlite:///{folder / f'personal-{uuid.uuid4().hex[:6]}.db'}"
        else:
            url = stack.enter_context(server.database()).pg_url
        yield url, stack


def appends(backends: list[str], ops: int, repeats: int, server: Any, folder: Path) -> list[str]:
    lines = [
        "## Appends: one event per append (median µs per append)",
        "",
        "| backend | plain email | personal email | personal / plain "
        "| first append of a new subject (plain / personal) |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend in backends:
        say(f"appends on {backend} ...")
        with opened(backend, folder, server) as (url, stack):
            store = stack.enter_context(eventkeep.open_store(url))
            result = compare({kind: appender(store, kind) for kind in KINDS}, ops, repeats)
            fresh = compare(
                {kind: new_subject_appender(store, kind) for kind in KINDS},
                max(ops // 3, 20),
                repeats,
            )
        plain, personal = result["plain"], result["personal"]
        lines.append(
            f"| {backend} | {plain:.0f} | {personal:.0f} | {personal / plain:.2f}x "
            f"| {fresh['plain']:.0f} / {fresh['personal']:.0f} "
            f"({fresh['personal'] / fresh['plain']:.2f}x) |"
        )
    return lines


def fill(store: eventkeep.EventStore, kind: str, count: int) -> None:
    batch = 500
    for start in range(0, count, batch):
        store.append_events([event(kind, n) for n in range(start, min(count, start + batch))])


def read_seconds(store: eventkeep.EventStore, kind: str, what: str) -> float:
    began = time.perf_counter()
    seen = 0
    for recorded in store.read_all(types=[KINDS[kind]]):
        _ = recorded.event if what == "event" else recorded.data
        seen += 1
    took = time.perf_counter() - began
    assert seen, kind
    return took / seen


def reads(backends: list[str], count: int, repeats: int, server: Any, folder: Path) -> list[str]:
    lines = [
        "",
        f"## Reads: read_all(types=...) of {count:,} events of each kind, decoded "
        "(median µs per event)",
        "",
        "| backend | read | plain email | personal email | personal / plain | floor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    crypto = crypto_floor_seconds()
    for backend in backends:
        say(f"reads on {backend} ...")
        with opened(backend, folder, server) as (url, stack):
            store = stack.enter_context(eventkeep.open_store(url))
            for kind in KINDS:
                fill(store, kind, count)
            for what, cold in (("event", False), ("event", True), ("data", False)):
                samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
                for _ in range(repeats):
                    for kind in KINDS:
                        if cold and backend != "memory":
                            with eventkeep.open_store(url) as handle:
                                samples[kind].append(read_seconds(handle, kind, what))
                        else:
                            if cold:  # memory: one store object; drop its key cache
                                store.codec.personal._keys = {}  # type: ignore[union-attr]
                                store.codec.personal._revealed = {}  # type: ignore[union-attr]
                            samples[kind].append(read_seconds(store, kind, what))
                plain = statistics.median(samples["plain"]) * 1e6
                personal = statistics.median(samples["personal"]) * 1e6
                label = f".{what}" + (", cold (new handle)" if cold else ", warm")
                floor = (plain + crypto * 1e6) / plain
                lines.append(
                    f"| {backend} | {label} | {plain:.2f} | {personal:.2f} "
                    f"| {personal / plain:.2f}x | {floor:.2f}x |"
                )
            hot: dict[str, list[float]] = {kind: [] for kind in KINDS}
            for kind in KINDS:
                store.append(f"hot-{kind}", [event(kind, n) for n in range(HOT)])
            for _ in range(repeats * 20):
                for kind in KINDS:
                    hot[kind].append(hot_read(store, f"hot-{kind}"))
            plain = statistics.median(hot["plain"]) * 1e6
            personal = statistics.median(hot["personal"]) * 1e6
            lines.append(
                f"| {backend} | read_stream of a hot {HOT}-event stream, .event | {plain:.2f} "
                f"| {personal:.2f} | {personal / plain:.2f}x | (cached) |"
            )
    lines += [
        "",
        f"floor: the plain read plus what revealing one field cannot avoid, measured here: "
        f"{crypto * 1e6:.2f} µs (base64 decode and one AES-GCM decryption of a 20-byte "
        "email, cryptography's AESGCM); the rest of the gap is finding and replacing the "
        "encrypted value in the JSON.",
    ]
    return lines


def crypto_floor_seconds(rounds: int = 200_000) -> float:
    """Seconds per field of the two steps no reveal can skip: decoding the stored base64 and
    one AES-GCM decryption with the subject's key (a cached ``AESGCM`` object)."""
    import binascii
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher, nonce = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(12)
    sealed = binascii.b2a_base64(nonce + cipher.encrypt(nonce, b'"ann@example.com"', b"x"))
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(rounds // 5):
            raw = binascii.a2b_base64(sealed)
            cipher.decrypt(raw[:12], raw[12:], b"x")
        best = min(best, (time.perf_counter() - began) / (rounds // 5))
    return best


HOT = 100
"""Events of the stream an aggregate reloads on every command (the hot-read row)."""


def hot_read(store: eventkeep.EventStore, stream: str) -> float:
    began = time.perf_counter()
    events = [recorded.event for recorded in store.read_stream(stream)]
    return (time.perf_counter() - began) / len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="memory,sqlite")
    parser.add_argument("--ops", type=int, default=300, help="appends per variant and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000, help="events of each kind read")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    with contextlib.ExitStack() as stack:
        server = None
        if "postgres" in backends:
            from benchmarks.pg import Server

            server = Server()
            stack.callback(server.close)
            say(f"PostgreSQL {server.version}: {server.description}")
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        lines = appends(backends, args.ops, args.repeats, server, folder)
        lines += reads(backends, args.events, args.repeats, server, folder)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
