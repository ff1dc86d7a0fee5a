"""Helpers of the PostgreSQL process tests: worker processes, raw transactions, and the checks
that the global log is complete, in order and read exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

import eventkeep
from eventkeep.store.codec import new_event_id
from eventkeep.store.hashing import GENESIS, chain_hash
from eventkeep.store.recorded import RecordedEvent, to_micros

WORKERS = Path(__file__).with_name("pg_workers.py")
SEQUENCER_LOCK_KEY = (
    "SELECT (x'454b5351'::bigint << 32) | oid::bigint FROM pg_namespace WHERE nspname = %s"
)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


class Workers:
    """Worker processes of one test, sharing a directory for their results."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.retries: dict[str, int] = {}

    def spawn(
        self, role: str, name: str, *options: str, url: str | None = None
    ) -> subprocess.Popen[bytes]:
        command = [sys.executable, str(WORKERS), role, url or self.url, str(self.out(name)), name]
        with (self.folder / f"{name}.err").open("wb") as errors:
            proc = subprocess.Popen([*command, *options], stdout=subprocess.DEVNULL, stderr=errors)
        self.procs[name] = proc
        return proc

    def out(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def all_ready(self, names: Iterable[str]) -> None:
        names = list(names)
        wait_until(
            lambda: all(self.out(n).with_suffix(".ready").exists() for n in names),
            "the workers to open their stores",
            timeout=120,
        )

    def go(self) -> None:
        (self.folder / "go").touch()

    def held(self, name: str) -> bool:
        """Whether the writer ``name`` (spawned with ``--hold-at``) is holding."""
        return self.out(name).with_suffix(".held").exists()

    def resume(self) -> None:
        """Let writers that hold go on."""
        (self.folder / "resume").touch()

    def stop_readers_at(self, position: int) -> None:
        tmp = self.folder / "stop.tmp"
        tmp.write_text(str(position))
        tmp.rename(self.folder / "stop")

    def finish(self, names: Iterable[str], timeout: float = 120.0) -> dict[str, Any]:
        """Wait for the named workers; every one must exit 0. Returns their results, and
        keeps in ``retries`` how often each retried a call while the backend was away."""
        results = {}
        for name in names:
            proc = self.procs[name]
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"worker {name} did not finish: {self.errors(name)}") from None
            assert code == 0, f"worker {name} exited with {code}: {self.errors(name)}"
            output = json.loads(self.out(name).read_text())
            results[name] = output["result"]
            self.retries[name] = output["retries"]
        return results

    def errors(self, name: str) -> str:
        return (self.folder / f"{name}.err").read_text(errors="replace")[-3000:]

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def raw_connection(url: str, schema: str) -> psycopg.Connection[Any]:
    """A plain psycopg connection in the store's schema (no pool, no eventkeep)."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"SET search_path TO {schema}")
    return conn


# How eventkeep up to schema version 3 wrote an event: unnumbered (position NULL), in a
# transaction of its own that took no lock but the stream's, numbered after its commit. Only a
# schema built by migrations 1-4 still takes such rows (the schema 5 migration test); migration
# 5 numbers them and makes position NOT NULL.
INSERT_UNNUMBERED = (
    "WITH inserted AS (INSERT INTO events (stream_id, version, event_id, type, schema_version, "
    "recorded_at, data_bytes, metadata_bytes, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)) "
    "INSERT INTO streams (stream_id, version, last_hash, last_recorded_at) "
    "VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "last_hash = excluded.last_hash, last_recorded_at = excluded.last_recorded_at"
)


def insert_uncommitted(conn: psycopg.Connection[Any], stream_id: str, count: int) -> list[str]:
    """Begin a transaction that inserts ``count`` valid events into a new stream, unnumbered, the
    way an older eventkeep's writer did (a correct hash chain), and leave it open."""
    conn.execute("BEGIN")
    now = datetime.now(UTC)
    now_us = to_micros(now)
    previous = GENESIS
    ids = []
    for version in range(1, count + 1):
        event_id = new_event_id()
        data = json.dumps({"n": version}, separators=(",", ":")).encode()
        previous = chain_hash(
            previous, stream_id, version, event_id, "pg.Slow", 1, now_us, data, b"{}"
        )
        event = uuid.UUID(bytes=event_id)
        row = (stream_id, version, event, "pg.Slow", 1, now, data, b"{}", previous)
        conn.execute(INSERT_UNNUMBERED, (*row, stream_id, version, previous, now))
        ids.append(str(event))
    return ids


def check_log(
    log: list[RecordedEvent], readers: dict[str, list[list[Any]]]
) -> dict[str, list[int]]:
    """The log is complete and consistent, and every reader read all of it exactly once, in
    the same order. Returns each stream's versions in log order."""
    expected = [[e.position, str(e.event_id), e.stream_id, e.version] for e in log]
    ids = [e[1] for e in expected]
    assert len(set(ids)) == len(ids), "an event appears twice in the log"
    positions = [e[0] for e in expected]
    assert positions == sorted(set(positions)), "positions are not strictly increasing"
    for name, seen in readers.items():
        assert len(seen) == len(expected), f"reader {name} read {len(seen)} of {len(expected)}"
        assert seen == expected, f"reader {name} did not read the log exactly once, in order"
    by_stream: dict[str, list[int]] = defaultdict(list)
    for event in log:
        by_stream[event.stream_id].append(event.version)
    for stream, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), (
            f"stream {stream}: versions in log order are {versions[:20]}..."
        )
    return dict(by_stream)


def check_acknowledged(log: list[RecordedEvent], appends: Iterable[dict[str, Any]]) -> int:
    """Every acknowledged append is stored exactly as acknowledged. Returns how many events."""
    stored = {str(e.event_id): e for e in log}
    count = 0
    for append in appends:
        for event_id, version, position in zip(
            append["ids"], append["versions"], append["positions"], strict=True
        ):
            event = stored.get(event_id)
            assert event is not None, f"acknowledged event {event_id} was lost"
            assert (event.stream_id, event.version, event.position) == (
                append["stream"],
                version,
                position,
            )
            count += 1
    return count


def check_whole_batches(log: list[RecordedEvent]) -> None:
    """No partial append is visible: every batch is stored with all its events, contiguous."""
    batches: dict[str, list[RecordedEvent]] = defaultdict(list)
    for event in log:
        batch = event.metadata.get("batch")
        if batch is not None:
            batches[batch].append(event)
    for batch, events in batches.items():
        size = events[0].metadata["size"]
        assert len(events) == size, f"batch {batch}: {len(events)} of {size} events stored"
        versions = [e.version for e in events]
        assert versions == list(range(versions[0], versions[0] + size)), batch


def open_store(url: str, **options: Any) -> eventkeep.EventStore:
    return eventkeep.open_store(url, **options)
