"""A writer SIGKILLed in the middle of multi-event appends, again and again on one file.

A third of the kills come from the test at a random moment; a third the writer delivers to
itself just before a randomly chosen SQL statement of an append (from ``BEGIN IMMEDIATE`` to
``COMMIT``, so before the append commits); a third right after an append returned and before
its ack is logged. After every kill the file must open cleanly, show every append whole or not
at all, hold every append the writer acknowledged, and verify all-clear; the next writer re-sends
the append left without an ack and must get the original result back if it was stored.
synchronous=FULL (the default) throughout.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlite_harness import Workers
from sqlite_workers import pending_intent, read_jsonl

import eventkeep

RUNS = 24
SEED = int(os.environ.get("EVENTKEEP_CRASH_SEED", random.randrange(2**32)))

pytestmark = pytest.mark.slow


def check_store(db: Path, acks: dict[str, dict[str, Any]]) -> set[str]:
    """Everything that must hold after a crash; returns the batch ids stored."""
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        events = list(store.read_all())
        batches: dict[str, list[eventkeep.RecordedEvent]] = defaultdict(list)
        streams: dict[str, list[int]] = defaultdict(list)
        for ev in events:
            batches[ev.data["batch_id"]].append(ev)
            streams[ev.stream_id].append(ev.version)

        for batch_id, stored in batches.items():
            size = stored[0].data["batch_size"]
            indexes = sorted(ev.data["index"] for ev in stored)
            assert indexes == list(range(size)), f"append {batch_id} is partly stored"
            # One transaction: consecutive positions, one recorded_at.
            first = stored[0].position
            assert [ev.position for ev in stored] == list(range(first, first + size))
            assert len({ev.recorded_at for ev in stored}) == 1

        for batch_id, ack in acks.items():
            assert batch_id in batches, f"acknowledged append {batch_id} is lost"
            where = {
                stream: ([ev.version for ev in evs], [ev.position for ev in evs])
                for stream, evs in _by_stream(batches[batch_id]).items()
            }
            assert where == {s: (v, p) for s, v, p in ack["results"]}, batch_id

        for stream_id, versions in streams.items():
            assert versions == list(range(1, len(versions) + 1)), stream_id
            assert store.stream_version(stream_id) == len(versions)
        assert store.head_position() == (events[-1].position if events else 0)

        report = store.verify()
        assert report.ok, report.broken
        assert report.events_checked == len(events)

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    return set(batches)


def _by_stream(events: list[eventkeep.RecordedEvent]) -> dict[str, list[eventkeep.RecordedEvent]]:
    grouped: dict[str, list[eventkeep.RecordedEvent]] = defaultdict(list)
    for ev in events:
        grouped[ev.stream_id].append(ev)
    return grouped


def acks_of(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    acks = [r for r in records if "batch_id" in r]
    by_id = {ack["batch_id"]: ack for ack in acks}
    assert len(by_id) == len(acks), "an append was acknowledged twice"
    return by_id


def test_no_partial_append_is_visible_and_acknowledged_appends_survive_sigkill(
    tmp_path: Path, workers: Workers
) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "crash.db"
    log = tmp_path / "appends.jsonl"
    stored_before: set[str] = set()
    committed_unacknowledged: set[str] = set()
    for run in range(RUNS + 1):
        context = f"run {run}, EVENTKEEP_CRASH_SEED={SEED}"
        how = "final" if run == RUNS else ("outside", "mid-append", "after-commit")[run % 3]
        kill_after = {
            "outside": 0,
            "mid-append": rng.randint(1, 800),
            "after-commit": -rng.randint(1, 20),
            "final": 1,  # re-sends what is pending, then stops at its first new append
        }[how]
        logged_before = log.stat().st_size if log.exists() else 0
        proc = workers.start("crash-writer", db, log, run, rng.randrange(2**32), kill_after)
        if how == "outside":
            if run % 6 != 3:  # mostly mid-stream; now and then anywhere from start-up on
                workers.wait_until(
                    lambda size=logged_before: log.exists() and log.stat().st_size > size,
                    timeout=120,
                    what=f"the writer's first append ({context})",
                )
            time.sleep(rng.uniform(0, 0.2))  # a random moment: only varies where kills land
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        assert proc.returncode == -signal.SIGKILL, f"{context}: {workers.stderr(proc)}"

        records = read_jsonl(log)
        acks = acks_of(records)
        stored = check_store(db, acks)
        assert stored >= stored_before, f"{context}: stored appends vanished"
        # Only the append in flight at the kill may be stored without an ack...
        pending = pending_intent(records)
        unacknowledged = stored - set(acks)
        assert unacknowledged <= ({pending["intent"]} if pending else set()), context
        if how == "mid-append":  # ...and one killed before its COMMIT ran is not stored
            assert not unacknowledged, context
        if how == "after-commit":  # ...while one that returned is stored, ack or not
            assert pending is not None
            assert unacknowledged == {pending["intent"]}, context
            committed_unacknowledged.add(pending["intent"])
        stored_before = stored

    # Every append whose ack the kill prevented was re-sent by the next writer, which got the
    # original result back (check_store compared it with what is stored): idempotent, once.
    assert committed_unacknowledged
    for batch_id in committed_unacknowledged:
        assert acks[batch_id]["resent"] is True, batch_id
    assert len(acks) >= RUNS, "too few appends were acknowledged to mean much"
