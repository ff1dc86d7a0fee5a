"""Group commit on SQLite: appends that threads of one store make at the same time share one
transaction and one commit, yet each gets the outcome it would have had alone.

The appends are lined up deterministically: another thread holds a store transaction (so the
writer connection is busy) until every append is queued behind it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventkeep import (
    AppendResult,
    BackendUnavailableError,
    ConcurrencyError,
    NewEvent,
    RawEvent,
)
from eventkeep.backends.sqlite import SQLiteStore

WAIT = 30.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "group.db") as opened:
        opened.append("existing", [RawEvent("Opened", {}), RawEvent("Credited", {})], 0)
        yield opened


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


def queued_behind_a_transaction(
    store: SQLiteStore, appends: dict[str, Callable[[], AppendResult]]
) -> tuple[dict[str, AppendResult | BaseException], list[str]]:
    """Run ``appends`` on threads of their own while another thread holds a transaction;
    release it once all are queued. Returns each one's outcome and the BEGINs run after."""
    holding, release = threading.Event(), threading.Event()
    outcomes: dict[str, AppendResult | BaseException] = {}

    def hold() -> None:
        with store.transaction() as tx:
            tx.append("holder", [RawEvent("Opened", {})], 0)
            holding.set()
            assert release.wait(WAIT)

    def run(name: str, append: Callable[[], AppendResult]) -> None:
        try:
            outcomes[name] = append()
        except BaseException as exc:  # handed to the test thread
            outcomes[name] = exc

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(WAIT)
    threads = [threading.Thread(target=run, args=item) for item in appends.items()]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(store._queued) == len(appends), "every append to be queued")
    begins: list[str] = []
    store._conn.set_trace_callback(lambda s: begins.append(s) if s.startswith("BEGIN") else None)
    release.set()
    holder.join(WAIT)
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    store._conn.set_trace_callback(None)
    return outcomes, begins


def test_queued_appends_share_one_commit_and_each_gets_its_own_outcome(
    store: SQLiteStore,
) -> None:
    retried = NewEvent(RawEvent("Opened", {"n": 1}), event_id=uuid.uuid4())
    outcomes, begins = queued_behind_a_transaction(
        store,
        {
            "a": lambda: store.append("a", [RawEvent("Opened", {})], 0),
            "b": lambda: store.append("b", [RawEvent("Opened", {}), RawEvent("Credited", {})], 0),
            "stale": lambda: store.append("existing", [RawEvent("Credited", {})], 0),
            "fresh": lambda: store.append("existing", [RawEvent("Credited", {})], 2),
            "retry-1": lambda: store.append("twice", [retried], 0),
            "retry-2": lambda: store.append("twice", [retried], 0),
        },
    )
    assert begins == ["BEGIN IMMEDIATE"]  # one transaction for all six
    assert isinstance(outcomes["stale"], ConcurrencyError)
    assert outcomes["retry-1"] == outcomes["retry-2"]  # the second is the first, replayed
    written = {
        name: outcome
        for name, outcome in outcomes.items()
        if isinstance(outcome, AppendResult) and name != "retry-2"
    }
    assert all(isinstance(outcome, AppendResult) for outcome in written.values())
    positions = sorted(p for result in written.values() for p in result.positions)
    assert positions == list(range(4, 4 + 5))  # after the 2 events and the holder's one
    assert store.stream_version("existing") == 3
    assert [ev.event_id for ev in store.read_stream("twice")] == [retried.event_id]
    for result in written.values():
        stored = list(store.read_all(after=result.positions[0] - 1, limit=len(result.positions)))
        assert [(ev.stream_id, ev.version) for ev in stored] == [
            (result.stream_id, version) for version in result.versions
        ]
    assert store.verify().ok


def test_a_database_error_inside_one_append_writes_the_others_alone(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_in = store._append_in

    def failing(cur: sqlite3.Cursor, batches: Any, now: int, *rest: Any) -> list[AppendResult]:
        if batches[0].stream_id == "bad":
            raise sqlite3.OperationalError("disk I/O error")
        return append_in(cur, batches, now, *rest)

    monkeypatch.setattr(store, "_append_in", failing)
    outcomes, begins = queued_behind_a_transaction(
        store,
        {
            name: (lambda name=name: store.append(name, [RawEvent("Opened", {})], 0))
            for name in ("ok-1", "bad", "ok-2")
        },
    )
    # The group's transaction rolled back; then each append was written alone.
    assert begins == ["BEGIN IMMEDIATE"] * 4
    assert isinstance(outcomes["bad"], BackendUnavailableError)
    assert "disk I/O error" in str(outcomes["bad"])
    assert isinstance(outcomes["ok-1"], AppendResult)
    assert isinstance(outcomes["ok-2"], AppendResult)
    assert [store.stream_version(s) for s in ("ok-1", "bad", "ok-2")] == [1, 0, 1]
    assert sorted(outcomes["ok-1"].positions + outcomes["ok-2"].positions) == [4, 5]
    assert store.verify().ok


def test_threads_appending_at_once_lose_nothing_and_keep_commit_order(
    store: SQLiteStore,
) -> None:
    per_thread = 40
    results: list[AppendResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def own_streams(n: int) -> None:
        start.wait(WAIT)
        for i in range(per_thread):
            stream = f"own-{n}-{i % 4}"
            results.append(store.append(stream, [RawEvent("Opened", {"i": i})], i // 4))

    def hot() -> None:
        start.wait(WAIT)
        done = 0
        while done < per_thread:
            version = store.stream_version("hot")
            try:
                results.append(store.append("hot", [RawEvent("Credited", {})], version))
            except ConcurrencyError:
                continue
            done += 1

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)
                start.abort()

        return run

    threads = [threading.Thread(target=guarded(lambda n=n: own_streams(n))) for n in range(4)]
    threads += [threading.Thread(target=guarded(hot)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    assert not errors, errors
    assert len(results) == 6 * per_thread
    log = list(store.read_all())
    assert [ev.position for ev in log] == list(range(1, 3 + 6 * per_thread))
    by_position = {ev.position: (ev.stream_id, ev.version) for ev in log}
    for result in results:
        assert by_position[result.position] == (result.stream_id, result.version)
    assert store.stream_version("hot") == 2 * per_thread
    assert store.verify().ok


def test_an_append_that_fails_after_writing_does_not_leave_its_writes_in_the_group(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A group writes appends without savepoints, relying on conflicts being found before
    # anything is written. Should an append ever write and then fail, the group notices.
    append_in = store._append_in

    def writes_then_conflicts(
        cur: sqlite3.Cursor, batches: Any, now: int, *rest: Any
    ) -> list[AppendResult]:
        results = append_in(cur, batches, now, *rest)
        if batches[0].stream_id == "sneaky":
            raise ConcurrencyError("sneaky", 0, 1)
        return results

    monkeypatch.setattr(store, "_append_in", writes_then_conflicts)
    outcomes, begins = queued_behind_a_transaction(
        store,
        {
            name: (lambda name=name: store.append(name, [RawEvent("Opened", {})], 0))
            for name in ("ok-1", "sneaky", "ok-2")
        },
    )
    assert begins == ["BEGIN IMMEDIATE"] * 4  # rolled back, then each alone
    assert isinstance(outcomes["sneaky"], ConcurrencyError)
    assert [store.stream_version(s) for s in ("ok-1", "sneaky", "ok-2")] == [1, 0, 1]
    assert store.head_position() == 5
    assert store.verify().ok
