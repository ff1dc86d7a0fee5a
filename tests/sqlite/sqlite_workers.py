"""Worker programs the multi-process SQLite tests run as real OS processes.

Run as ``python tests/sqlite/sqlite_workers.py <command> <args...>``; paths come in through argv.
Each worker bounds its own lifetime, so a bug can leave no process running for long.

- ``concurrent-writer URL NAME ACK_LOG GO_FILE EVENTS BATCH RIVAL ROLE``: print ``ready`` once
  its store is open, wait for GO_FILE, then append EVENTS events in batches of BATCH,
  alternately to the shared stream (expected version, retry on conflict) and to the worker's
  own stream; log every acknowledged append. However the two are scheduled, ROLE makes sure
  they race at least once, in events rather than in time: ``first`` holds its first shared
  append, expected version read, until RIVAL has appended to the shared stream (so it must hit
  a conflict); ``last`` holds its last shared append until the shared stream holds an event of
  RIVAL (so the writer changes at least twice along it).
- ``crash-writer PATH LOG RUN SEED KILL_AFTER``: multi-event appends (single-stream and
  ``append_many``) until SIGKILLed: by the test at a random moment; by itself just before its
  KILL_AFTER-th SQL statement of the append loop when KILL_AFTER > 0 (always within an append,
  before it commits); or when KILL_AFTER < 0, right after its -KILL_AFTER-th append returned,
  before logging the ack (committed, not acknowledged).
  Each append is logged (fsynced) as an intent before it is sent and as an ack only after
  ``append`` returned; a restarted writer first re-sends an intent left without an ack.
- ``hold-lock PATH``: take SQLite's write lock with raw ``sqlite3`` (``BEGIN IMMEDIATE``), print
  ``locked``, hold it until a line arrives on stdin, then release it and print ``released``.
- ``open-store URL GO_FILE``: print ``ready``, wait for GO_FILE, open the store, append one
  event, print its result.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import select
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventkeep
from eventkeep import ConcurrencyError, EventStore, NewEvent, RawEvent, StreamAppend

SHARED_STREAM = "shared"
CRASH_STREAMS = ("crash-a", "crash-b", "crash-c", "crash-d")
LIFETIME = 60.0
"""No worker runs longer than this, whatever happens to the test that started it."""


def wait_for_file(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear within {timeout}s")
        time.sleep(0.001)


class JsonLog:
    """An append-only file of JSON lines, each fsynced before ``write`` returns if asked."""

    def __init__(self, path: str, *, fsync: bool) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync = fsync
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            os.write(self._fd, b"\n")  # a line cut short by a kill stays a broken line

    def write(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        if self._fsync:
            os.fsync(self._fd)


def acked(result: eventkeep.AppendResult, event_ids: list[uuid.UUID]) -> dict[str, Any]:
    return {
        "stream": result.stream_id,
        "event_ids": [str(e) for e in event_ids],
        "versions": list(result.versions),
        "positions": list(result.positions),
    }


# -- two writers, one shared stream --------------------------------------------------------------


def concurrent_writer(
    url: str, name: str, ack_path: str, go: str, total: int, batch: int, rival: str, role: str
) -> None:
    log = JsonLog(ack_path, fsync=False)
    own = f"own-{name}"
    own_version = 0
    conflicts = 0
    sequence = itertools.count()
    rng = random.Random(name)
    shared_appends = (total // batch + 1) // 2
    with eventkeep.open_store(url) as store:
        print("ready", flush=True)
        wait_for_file(Path(go))
        shared = 0
        for number in range(total // batch):
            ids = [uuid.uuid4() for _ in range(batch)]
            events = [
                NewEvent(RawEvent("Ticked", {"worker": name, "seq": next(sequence)}), event_id=i)
                for i in ids
            ]
            if number % 2 == 0:
                shared += 1
                if role == "last" and shared == shared_appends:
                    wait_until(
                        lambda: any(
                            ev.data["worker"] == rival for ev in store.read_stream(SHARED_STREAM)
                        ),
                        f"an event of {rival} in the shared stream",
                    )
                # Read the version, append expecting it; on conflict re-read and retry. The same
                # event ids are re-sent: nothing of a refused append was written.
                while True:
                    expected = store.stream_version(SHARED_STREAM)
                    if role == "first" and shared == 1 and not conflicts:
                        wait_until(
                            lambda expected=expected: (
                                store.stream_version(SHARED_STREAM) > expected
                            ),
                            f"{rival} to append to the shared stream",
                        )
                    # Decide between reading and writing, as a command handler does: this is
                    # the window in which the other process slips in and causes a conflict.
                    time.sleep(rng.uniform(0, 0.002))
                    try:
                        result = store.append(SHARED_STREAM, events, expected_version=expected)
                        break
                    except ConcurrencyError as exc:
                        seen = (exc.stream_id, exc.expected, exc.actual > expected)
                        if seen != (SHARED_STREAM, expected, True):
                            raise SystemExit(f"ConcurrencyError with wrong details: {exc}") from exc
                        conflicts += 1
            else:
                result = store.append(own, events, expected_version=own_version)
                own_version = result.version
            log.write(acked(result, ids))
    log.write({"done": True, "conflicts": conflicts})


def wait_until(condition: Callable[[], bool], what: str, timeout: float = LIFETIME) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not happen within {timeout}s")
        time.sleep(0.001)


# -- the crash writer ------------------------------------------------------------------------------


def crash_writer(path: str, log_path: str, run: str, seed: int, kill_after: int) -> None:
    """Append until killed; first re-send the append the previous writer may have lost.

    Before each append its full content (event ids included) goes to the log as an intent;
    after it returns, its result goes there as an ack; both fsynced. A restarted writer re-sends
    the last intent without an ack, exactly as it was: the store must either recognise it as
    already stored (idempotency, returning the original result) or append it now.
    """
    rng = random.Random(seed)
    pending = pending_intent(read_jsonl(Path(log_path)))
    log = JsonLog(log_path, fsync=True)
    store = eventkeep.open_store(f"sqlite:///{path}")  # the default: synchronous=FULL
    if pending is not None:
        send(store, log, pending, resent=True)
    versions = {stream: store.stream_version(stream) for stream in CRASH_STREAMS}
    appended = itertools.count(1)

    def before_ack() -> None:
        if next(appended) == -kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    if kill_after > 0:
        store._conn.set_trace_callback(_kill_at(kill_after))  # type: ignore[attr-defined]
    padding = "x" * rng.randrange(100, 400)
    deadline = time.monotonic() + LIFETIME
    for number in itertools.count():
        if time.monotonic() > deadline:
            raise SystemExit("crash-writer was never killed")
        batch_id = f"{run}-{number}"
        if rng.random() < 0.6:
            streams = [rng.choice(CRASH_STREAMS)]
            sizes = [rng.randint(5, 50)]
        else:
            streams = rng.sample(CRASH_STREAMS, rng.randint(2, 3))
            sizes = [rng.randint(5, 20) for _ in streams]
        batch_size = sum(sizes)
        index = itertools.count()
        intent = {
            "intent": batch_id,
            "appends": [
                [
                    stream,
                    versions[stream],
                    [
                        [
                            str(uuid.uuid4()),
                            {
                                "batch_id": batch_id,
                                "batch_size": batch_size,
                                "index": next(index),
                                "padding": padding,
                            },
                        ]
                        for _ in range(size)
                    ],
                ]
                for stream, size in zip(streams, sizes, strict=True)
            ],
        }
        for result in send(store, log, intent, resent=False, before_ack=before_ack):
            versions[result.stream_id] = result.version


def send(
    store: EventStore,
    log: JsonLog,
    intent: dict[str, Any],
    *,
    resent: bool,
    before_ack: Callable[[], None] = lambda: None,
) -> list[eventkeep.AppendResult]:
    log.write(intent)
    appends = [
        StreamAppend(
            stream,
            [NewEvent(RawEvent("Recorded", data), event_id=uuid.UUID(i)) for i, data in events],
            expected,
        )
        for stream, expected, events in intent["appends"]
    ]
    if len(appends) == 1:
        single = appends[0]
        results = [store.append(single.stream_id, single.events, single.expected_version)]
    else:
        results = store.append_many(appends)
    before_ack()
    first = intent["appends"][0][2][0][1]
    log.write(
        {
            "batch_id": first["batch_id"],
            "batch_size": first["batch_size"],
            "resent": resent,
            "results": [[r.stream_id, list(r.versions), list(r.positions)] for r in results],
        }
    )
    return results


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log; a line a kill cut short is not a record."""
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a cut-short line, terminated by the next writer
    return records


def pending_intent(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last intent, unless an ack for it follows."""
    for record in reversed(records):
        if "intent" in record:
            return record
        if "batch_id" in record:
            return None
    return None


def _kill_at(statement: int) -> Callable[[str], None]:
    """A trace callback that SIGKILLs this process just before its ``statement``-th statement."""
    counter = itertools.count(1)

    def trace(_sql: str) -> None:
        if next(counter) >= statement:
            os.kill(os.getpid(), signal.SIGKILL)

    return trace


# -- lock holder and concurrent opener ------------------------------------------------------------


def hold_lock(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], LIFETIME)
    if ready:
        sys.stdin.readline()
    conn.execute("COMMIT")
    conn.close()
    print("released", flush=True)


def open_store(url: str, go: str) -> None:
    print("ready", flush=True)
    wait_for_file(Path(go))
    with eventkeep.open_store(url) as store:
        result = store.append(f"opener-{os.getpid()}", [RawEvent("Opened", {})], 0)
    print(json.dumps({"stream": result.stream_id, "positions": list(result.positions)}))


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(LIFETIME) + 10)  # the hard stop, should anything below hang
    command, args = argv[0], argv[1:]
    if command == "concurrent-writer":
        url, name, ack, go, total, batch, rival, role = args
        concurrent_writer(url, name, ack, go, int(total), int(batch), rival, role)
    elif command == "crash-writer":
        path, ack, run, seed, kill_after = args
        crash_writer(path, ack, run, int(seed), int(kill_after))
    elif command == "hold-lock":
        hold_lock(*args)
    elif command == "open-store":
        open_store(*args)
    else:
        raise SystemExit(f"unknown worker command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
