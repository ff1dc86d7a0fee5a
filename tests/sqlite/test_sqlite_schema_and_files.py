"""Schema migrations recorded in the file, newer schemas refused, and files that are no store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_harness import Workers

import eventkeep
from eventkeep import BackendUnavailableError, RawEvent, SchemaVersionError
from eventkeep.store.migrations import load_migrations

MIGRATIONS = load_migrations("eventkeep.backends.sqlite")
LATEST = MIGRATIONS[-1].version


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def raw(path: Path, statement: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


def recorded_migrations(path: Path) -> list[tuple[object, ...]]:
    return raw(path, "SELECT version, name, applied_at FROM eventkeep_migrations ORDER BY version")


def test_every_migration_is_recorded_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    eventkeep.open_store(url(path)).close()
    rows = recorded_migrations(path)
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in MIGRATIONS]
    assert [v for v, _, _ in rows] == list(range(1, LATEST + 1))
    assert LATEST >= 2
    assert all(isinstance(at, str) and at.endswith("Z") for _, _, at in rows)


def test_reopening_does_not_run_migrations_again(tmp_path: Path) -> None:
    path = tmp_path / "reopen.db"
    with eventkeep.open_store(url(path)) as store:
        store.append("s", [RawEvent("Happened", {"n": 1})], 0)
    rows = recorded_migrations(path)
    schema_cookie = raw(path, "PRAGMA schema_version")  # bumped by every schema change
    for _ in range(3):
        with eventkeep.open_store(url(path)) as store:
            assert store.stream_version("s") == 1
    assert recorded_migrations(path) == rows
    assert raw(path, "PRAGMA schema_version") == schema_cookie


def test_a_schema_newer_than_the_code_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with eventkeep.open_store(url(path)) as store:
        store.append("s", [RawEvent("Happened", {"n": 1})], 0)
    raw(
        path,
        "INSERT INTO eventkeep_migrations (version, name, applied_at) "
        f"VALUES ({LATEST + 1}, 'from_the_future', '2099-01-01T00:00:00Z')",
    )
    cookie = raw(path, "PRAGMA schema_version")
    with pytest.raises(SchemaVersionError) as caught:
        eventkeep.open_store(url(path))
    message = str(caught.value)
    assert f"schema version {LATEST + 1}" in message
    assert f"up to {LATEST}" in message
    assert "upgrade eventkeep" in message
    assert str(path) in message
    assert raw(path, "PRAGMA schema_version") == cookie  # nothing was touched
    assert raw(path, "SELECT COUNT(*) FROM events") == [(1,)]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"these are my notes, not a database\n" * 200, id="text"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 4080, id="corrupt-header"),
    ],
)
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(BackendUnavailableError, match="not a usable eventkeep database") as caught:
        eventkeep.open_store(url(path))
    assert str(path) in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_sqlite_database_of_another_application_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    raw(path, "CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    with pytest.raises(BackendUnavailableError, match="events already exists"):
        eventkeep.open_store(url(path))
    tables = raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert tables == [("events",)]  # the failed migration was rolled back whole


def test_an_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(BackendUnavailableError, match="unable to open database file"):
        eventkeep.open_store(url(tmp_path / "a-directory"))


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing-dir"
    with pytest.raises(eventkeep.ConfigurationError, match=f"the directory {missing} does not"):
        eventkeep.open_store(url(missing / "store.db"))
    assert not missing.exists()


@pytest.mark.slow
def test_processes_opening_a_new_file_at_once_all_succeed_and_migrate_once(
    tmp_path: Path, workers: Workers
) -> None:
    openers = 5
    for attempt in range(3):
        path = tmp_path / f"race-{attempt}.db"
        go = tmp_path / f"go-{attempt}"
        procs = [workers.start("open-store", url(path), go) for _ in range(openers)]
        # All at once: only when every opener has started up (under load, that takes a while).
        for proc in procs:
            assert workers.readline(proc, timeout=120) == "ready"
        go.touch()
        results = [json.loads(workers.finish(proc, timeout=60)) for proc in procs]
        assert [(v, n) for v, n, _ in recorded_migrations(path)] == [
            (m.version, m.name) for m in MIGRATIONS
        ]
        assert sorted(p for r in results for p in r["positions"]) == list(range(1, openers + 1))
        with eventkeep.open_store(url(path)) as store:
            assert len(store.list_streams("opener-")) == openers
            report = store.verify()
            assert report.ok
            assert report.events_checked == openers
