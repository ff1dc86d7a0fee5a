"""The SQLite store's write connection remembers what its own appends wrote (the last event's
time, stream heads, that no removed position lies above the log) and skips asking for it: only
while nothing else wrote. Another connection's commit (another store object, another process),
a lifecycle operation, a store transaction or a rollback makes it read again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import eventkeep
from eventkeep import RawEvent
from eventkeep.errors import ConcurrencyError

SRC = Path(eventkeep.__file__).resolve().parent.parent


def one(n: int) -> list[RawEvent]:
    return [RawEvent("Noted", {"n": n})]


def statements(store: eventkeep.EventStore) -> list[str]:
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)  # type: ignore[attr-defined]
    return seen


def test_an_append_after_its_own_asks_nothing_of_the_stream_or_the_log(tmp_path: Path) -> None:
    with eventkeep.open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.append("s-1", one(1))
        seen = statements(store)
        store.append("s-1", one(2), expected_version=1)
        reads = [s for s in seen if s.startswith("SELECT")]
        assert reads == []  # no head, no last time, no removed positions asked
        assert store.verify().ok


def test_another_store_objects_appends_are_seen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with eventkeep.open_store(url) as a, eventkeep.open_store(url) as b:
        for n in range(0, 40, 2):
            a.append("shared", one(n), expected_version=n)
            b.append("shared", one(n + 1), expected_version=n + 1)
        with pytest.raises(ConcurrencyError):
            a.append("shared", one(99), expected_version=39)  # b wrote version 40
        a.append("shared", one(40), expected_version=40)
        assert [e.version for e in a.read_stream("shared")] == list(range(1, 42))
        assert a.verify().ok


def test_another_processes_append_is_seen(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    url = f"sqlite:///{db}"
    script = (
        "import sys, eventkeep\n"
        "with eventkeep.open_store(sys.argv[1]) as s:\n"
        "    s.append('shared', [eventkeep.RawEvent('Noted', {'n': 'other'})], "
        "expected_version=int(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with eventkeep.open_store(url) as store:
        for version in range(0, 6, 2):
            store.append("shared", one(version), expected_version=version)
            subprocess.run(
                [sys.executable, "-c", script, url, str(version + 1)], env=env, check=True
            )
        store.append("shared", one(6), expected_version=6)
        events = list(store.read_stream("shared"))
        assert [e.version for e in events] == list(range(1, 8))
        assert [e.data["n"] for e in events] == [0, "other", 2, "other", 4, "other", 6]
        assert store.verify().ok


def test_appends_after_the_logs_last_events_were_removed_number_above_them(
    tmp_path: Path,
) -> None:
    archives = tmp_path / "archives"
    with eventkeep.open_store(f"sqlite:///{tmp_path / 'a.db'}", archive_dir=str(archives)) as store:
        store.append("keep", one(0))
        store.append("gone", one(1) + one(2))  # positions 2 and 3: the log's last
        store.append("keep", one(3), expected_version=1)  # position 4, remembered
        store.append("gone", one(4), expected_version=2)  # position 5
        store.delete_stream("gone", hard=True)  # positions 2, 3 and 5 leave the live tables
        appended = store.append("keep", one(5), expected_version=2)
        assert appended.positions == (6,)  # above the removed 5, not 5 again
        assert store.verify().ok


def test_a_rolled_back_transaction_is_not_remembered(tmp_path: Path) -> None:
    with eventkeep.open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.append("s-1", one(1))

        def undone() -> None:
            with store.transaction():
                store.append("s-1", one(2), expected_version=1)
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            undone()
        store.append("s-1", one(3), expected_version=1)
        assert [e.data["n"] for e in store.read_stream("s-1")] == [1, 3]
        assert store.verify().ok
