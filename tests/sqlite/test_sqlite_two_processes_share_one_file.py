"""Two OS processes append to one SQLite file, half of it to one shared stream."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlite_harness import Workers

import eventkeep

EVENTS_PER_WORKER = 5_000
BATCH = 10
WORKER_NAMES = ("w1", "w2")
# However the two get scheduled, they race at least once (see sqlite_workers.py): w2's first
# shared append waits, its expected version read, for one of w1's; w1's last waits for one of w2's.
ROLES = {"w1": ("w2", "last"), "w2": ("w1", "first")}

pytestmark = pytest.mark.slow


def read_acks(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines, f"{path} is empty"
    *appends, summary = lines
    assert summary.get("done") is True, f"{path} does not end with the done marker"
    return appends, summary


def test_every_acknowledged_event_is_stored_once_in_contiguous_consistent_order(
    tmp_path: Path, workers: Workers
) -> None:
    db = tmp_path / "shared.db"
    go = tmp_path / "go"
    # synchronous=FULL (the default) is kept: 1,000 single-fsync commits finish in seconds here.
    url = f"sqlite:///{db}"
    store = eventkeep.open_store(url)  # creates the schema before the race starts
    acks = {name: tmp_path / f"{name}.acks" for name in WORKER_NAMES}
    procs = [
        workers.start(
            "concurrent-writer", url, name, acks[name], go, EVENTS_PER_WORKER, BATCH, *ROLES[name]
        )
        for name in WORKER_NAMES
    ]
    # Start the race only once both have started up (under load, that can take seconds).
    for proc in procs:
        assert workers.readline(proc, timeout=120) == "ready"
    go.touch()

    # Meanwhile, tail the global log like a subscriber: it must never skip an event. Now and
    # then verify and count mid-race: each reads one consistent snapshot of the file.
    tailed: list[eventkeep.RecordedEvent] = []
    deadline = time.monotonic() + 120
    for poll in itertools.count():
        if all(p.poll() is not None for p in procs):
            break
        assert time.monotonic() < deadline, "writers did not finish in 120s"
        after = tailed[-1].position if tailed else 0
        tailed.extend(store.read_all(after=after, limit=500))
        if poll % 20 == 0:
            report = store.verify()
            assert report.ok, report.broken
            stats = store.stats()
            assert stats.events == stats.head_position == sum(stats.types.values())
        time.sleep(0.005)
    for proc in procs:
        workers.finish(proc)
    tailed.extend(store.read_all(after=tailed[-1].position if tailed else 0))

    stored = list(store.read_all())
    by_id = {str(ev.event_id): ev for ev in stored}
    assert len(by_id) == len(stored), "an event id is stored twice"

    acked_ids: set[str] = set()
    conflicts = 0
    for name in WORKER_NAMES:
        appends, summary = read_acks(acks[name])
        conflicts += summary["conflicts"]
        assert sum(len(a["event_ids"]) for a in appends) == EVENTS_PER_WORKER
        for ack in appends:
            for event_id, version, position in zip(
                ack["event_ids"], ack["versions"], ack["positions"], strict=True
            ):
                assert event_id not in acked_ids, f"{event_id} acknowledged twice"
                acked_ids.add(event_id)
                ev = by_id[event_id]
                assert (ev.stream_id, ev.version, ev.position) == (
                    ack["stream"],
                    version,
                    position,
                )
                assert ev.data["worker"] == name
    # Nothing was acknowledged that is not stored, and nothing stored that was not acknowledged.
    assert set(by_id) == acked_ids
    assert len(stored) == 2 * EVENTS_PER_WORKER

    positions = [ev.position for ev in stored]
    assert positions == sorted(set(positions)), "positions are not unique and increasing"
    # The store's clock never runs backwards along the log, across processes.
    recorded = [ev.recorded_at for ev in stored]
    assert recorded == sorted(recorded)
    assert [ev.event_id for ev in tailed] == [ev.event_id for ev in stored], (
        "a reader tailing the log by position skipped or repeated events"
    )

    streams: dict[str, list[eventkeep.RecordedEvent]] = defaultdict(list)
    for ev in stored:  # read_all order
        streams[ev.stream_id].append(ev)
    assert set(streams) == {"shared", "own-w1", "own-w2"}
    for stream_id, events in streams.items():
        # read_all's order within a stream is the stream's version order, 1..N without gaps.
        assert [ev.version for ev in events] == list(range(1, len(events) + 1)), stream_id
        assert [ev.event_id for ev in events] == [
            ev.event_id for ev in store.read_stream(stream_id)
        ]
        assert store.stream_version(stream_id) == len(events)
        for name in WORKER_NAMES:  # each worker's own events keep the order it appended them
            seqs = [ev.data["seq"] for ev in events if ev.data["worker"] == name]
            assert seqs == sorted(seqs), (stream_id, name)
    assert len(streams["shared"]) == EVENTS_PER_WORKER
    assert len(streams["own-w1"]) == len(streams["own-w2"]) == EVENTS_PER_WORKER // 2

    # The writers really raced on the shared stream: its writer changes more than once.
    writers = [ev.data["worker"] for ev in streams["shared"]]
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    assert switches >= 2, f"the writers never interleaved (conflicts: {conflicts})"
    # At least w2's first append was sent with a stale expected version: it must have been
    # refused (a ConcurrencyError, then a retry), not stored over w1's.
    assert conflicts > 0, "no append ever hit a conflict: a stale expected version was accepted"

    report = store.verify()
    assert report.ok, report.broken
    assert report.events_checked == 2 * EVENTS_PER_WORKER
    assert report.streams_checked == 3
    store.close()
