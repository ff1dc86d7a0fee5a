"""Worker processes for the PostgreSQL process tests (run by ``pg_harness.spawn``).

    python pg_workers.py writer     URL OUT NAME --streams a,b --appends N --seed S [--hold-at H]
    python pg_workers.py hot-writer URL OUT NAME --streams hot --appends N --seed S
    python pg_workers.py reader     URL OUT NAME

Every worker opens its own store, touches ``OUT.ready``, waits for the file ``go`` next to OUT,
does its work and writes its results to OUT as JSON. Appends carry client-made event ids and
are retried with the same ids while the backend is unavailable (a server restart), so each append
is stored exactly once. A reader tails ``read_all`` from the start, waking with
``wait_for_events``, until it has read up to the position written to the file ``stop``.
A writer given ``--hold-at H`` touches ``OUT.held`` after its H-th append and waits for the file
``resume`` next to OUT before going on: a test can then do something (kill the server) while it
is known to be mid-run, whatever the scheduler did.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import eventkeep
from eventkeep import (
    ANY,
    AppendResult,
    BackendUnavailableError,
    ConcurrencyError,
    EventStore,
    NewEvent,
    RawEvent,
)

DEADLINE = 150.0  # seconds any worker may run before it gives up (the tests wait less)
RETRIES = [0]  # calls repeated because the backend was unavailable


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["writer", "hot-writer", "reader"])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("name")
    parser.add_argument("--streams", default="")
    parser.add_argument("--appends", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hold-at", type=int, default=0)
    args = parser.parse_args()
    deadline = time.monotonic() + DEADLINE
    store = _retry(deadline, lambda: eventkeep.open_store(args.url, poll_interval=0.2))
    try:
        args.out.with_suffix(".ready").touch()
        go = args.out.parent / "go"
        while not go.exists():
            if time.monotonic() > deadline:
                return 2
            time.sleep(0.01)
        if args.role == "reader":
            result: Any = read_everything(store, args.out.parent / "stop", deadline)
            replica = getattr(store, "_replica", None)
            if replica is not None:  # which server served its reads (a replica's tests)
                served = {"replica": replica.replica_reads, "primary": replica.primary_reads}
                args.out.with_suffix(".served").write_text(json.dumps(served))
        else:
            streams = args.streams.split(",")
            if args.role == "hot-writer":
                result = hot_writer(store, args.name, streams, args.appends, args.seed, deadline)
            else:
                hold = Hold(args.out, args.hold_at, deadline)
                result = writer(store, args.name, streams, args.appends, args.seed, deadline, hold)
    finally:
        store.close()
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"result": result, "retries": RETRIES[0]}))
    tmp.rename(args.out)
    return 0


def _retry(deadline: float, call: Any) -> Any:
    """``call()``, retried while the backend is unavailable (the server is restarting)."""
    while True:
        try:
            return call()
        except BackendUnavailableError:
            if time.monotonic() > deadline:
                raise
            RETRIES[0] += 1
            time.sleep(0.1)


def _events(name: str, number: int, count: int) -> list[NewEvent]:
    return [
        NewEvent(
            RawEvent("pg.Written", {"writer": name, "append": number, "index": i}),
            event_id=uuid.uuid4(),
            metadata={"batch": f"{name}/{number}", "size": count},
        )
        for i in range(count)
    ]


def _record(result: AppendResult, events: list[NewEvent], expected: Any) -> dict[str, Any]:
    return {
        "stream": result.stream_id,
        "expected": expected if isinstance(expected, int) else None,
        "versions": list(result.versions),
        "positions": list(result.positions),
        "ids": [str(e.event_id) for e in events],
    }


class Hold:
    """After the ``at``-th append: touch ``OUT.held``, then wait for ``resume`` (0: never)."""

    def __init__(self, out: Path, at: int, deadline: float) -> None:
        self.out = out
        self.at = at
        self.deadline = deadline

    def __call__(self, done: int) -> None:
        if done != self.at or self.at <= 0:
            return
        self.out.with_suffix(".held").touch()
        resume = self.out.parent / "resume"
        while not resume.exists():
            if time.monotonic() > self.deadline:
                raise TimeoutError("never told to resume")
            time.sleep(0.01)


def writer(
    store: EventStore,
    name: str,
    streams: list[str],
    appends: int,
    seed: int,
    deadline: float,
    hold: Any = None,
) -> list[dict[str, Any]]:
    """Appends of 1-4 events to this writer's own streams, mostly with exact expected versions."""
    rng = random.Random(seed)
    versions = dict.fromkeys(streams, 0)
    done = []
    for number in range(appends):
        if hold is not None:
            hold(number)
        stream = rng.choice(streams)
        events = _events(name, number, rng.randint(1, 4))
        expected: Any = versions[stream] if rng.random() < 0.7 else ANY
        result = _retry(deadline, lambda s=stream, e=events, x=expected: store.append(s, e, x))
        versions[stream] = result.version
        done.append(_record(result, events, expected))
    return done


def hot_writer(
    store: EventStore, name: str, streams: list[str], appends: int, seed: int, deadline: float
) -> dict[str, Any]:
    """Appends to one stream shared with other writers: read the version, append expecting it,
    and on a ConcurrencyError read again and retry (the same events, so the same ids)."""
    rng = random.Random(seed)
    (stream,) = streams
    done = []
    conflicts = 0
    for number in range(appends):
        events = _events(name, number, rng.randint(1, 3))
        while True:
            expected = _retry(deadline, lambda: store.stream_version(stream))
            try:
                result = _retry(deadline, lambda x=expected, e=events: store.append(stream, e, x))
            except ConcurrencyError:
                conflicts += 1
                if time.monotonic() > deadline:
                    raise
                continue
            break
        done.append(_record(result, events, expected))
    return {"appends": done, "conflicts": conflicts}


def read_everything(store: Any, stop: Path, deadline: float) -> list[list[Any]]:
    """Tail the global log from the start until the position in ``stop`` has been read."""
    seen: list[list[Any]] = []
    checkpoint = 0
    target: int | None = None
    while True:
        try:
            for event in store.read_all(after=checkpoint):
                seen.append([event.position, str(event.event_id), event.stream_id, event.version])
                checkpoint = event.position
        except BackendUnavailableError:
            RETRIES[0] += 1
            time.sleep(0.1)
        if target is None and stop.exists():
            target = int(stop.read_text())
        if target is not None and checkpoint >= target:
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"read up to {checkpoint}, never reached {target}")
        try:
            store.wait_for_events(checkpoint, timeout=0.5)
        except BackendUnavailableError:
            RETRIES[0] += 1
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
