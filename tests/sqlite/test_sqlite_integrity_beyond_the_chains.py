"""What the hash chains alone do not see, on SQLite: a damaged database file, the stream heads
table, positions, and (with an anchor) a history rewritten by someone who can write the file.

Every intrusion goes through the stdlib ``sqlite3`` module (or edits the file), as an
administrator of the database would.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import eventkeep
from eventkeep import RawEvent, StreamAppend
from eventkeep.store.anchors import Anchor, load_key
from eventkeep.store.hashing import GENESIS, chain_events

KEY = load_key(b"sqlite tests anchor secret, 40 bytes...")
STREAMS = {"alpha": 4, "beta": 5, "gamma": 3}


def make_store(path: Path) -> None:
    """Three interleaved streams, written one version at a time across them."""
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        for version in range(1, 6):
            store.append_many(
                [
                    StreamAppend(
                        stream,
                        [RawEvent("Alpha" if version % 2 else "Omega", {"n": version})],
                        version - 1,
                    )
                    for stream, length in STREAMS.items()
                    if version <= length
                ]
            )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    make_store(path)
    return path


@pytest.fixture
def anchor(db: Path) -> Anchor:
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        return store.anchor(KEY)


def verify(db: Path, **options: object) -> eventkeep.VerifyReport:
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        return store.verify(**options)  # type: ignore[arg-type]


@contextlib.contextmanager
def intruder(db: Path) -> Iterator[sqlite3.Connection]:
    """A raw connection, in one transaction with every eventkeep trigger dropped; the triggers
    are put back as shipped before the commit."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        saved = triggers.fetchall()
        conn.execute("BEGIN IMMEDIATE")
        for name, _ in saved:
            conn.execute(f"DROP TRIGGER {name}")
        yield conn
        for _, statement in saved:
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


class _Event(NamedTuple):
    event_id: bytes
    type: str
    schema_version: int
    data: bytes
    metadata: bytes
    tags: tuple[str, ...] = ()


def rechain(conn: sqlite3.Connection, stream_id: str) -> None:
    """Recompute a stream's hash chain (and its head) with the public algorithm."""
    rows = conn.execute(
        "SELECT position, version, event_id, type, schema_version, CAST(data AS BLOB), "
        "CAST(metadata AS BLOB), recorded_at FROM events WHERE stream_id = ? ORDER BY version",
        (stream_id,),
    ).fetchall()
    previous = GENESIS
    for position, version, event_id, type_, schema, data, metadata, recorded_at in rows:
        event = _Event(event_id, type_, schema, data, metadata)
        previous = chain_events(previous, stream_id, version - 1, [event], recorded_at)[0]
        conn.execute("UPDATE events SET hash = ? WHERE position = ?", (previous, position))
    if rows:
        conn.execute(
            "UPDATE streams SET version = ?, last_position = ?, last_hash = ? WHERE stream_id = ?",
            (rows[-1][1], rows[-1][0], previous, stream_id),
        )


def position_of(conn: sqlite3.Connection, stream_id: str, version: int) -> int:
    row = conn.execute(
        "SELECT position FROM events WHERE stream_id = ? AND version = ?", (stream_id, version)
    ).fetchone()
    return int(row[0])


def swap_positions(conn: sqlite3.Connection, first: int, second: int) -> None:
    conn.execute("UPDATE events SET position = -1 WHERE position = ?", (first,))
    conn.execute("UPDATE events SET position = ? WHERE position = ?", (first, second))
    conn.execute("UPDATE events SET position = ? WHERE position = -1", (second,))


# -- the database file -------------------------------------------------------------------------


def flip_in_index(db: Path, index: str, old: bytes, new: bytes) -> None:
    """Overwrite the first ``old`` in the root page of ``index`` (the whole index, in a small
    store) with ``new``: the table keeps its rows, the index now lies about one of them."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)
        ).fetchone()[0]
    finally:
        conn.close()
    with db.open("r+b") as file:
        file.seek((root - 1) * page_size)
        page = file.read(page_size)
        assert old in page
        file.seek((root - 1) * page_size)
        file.write(page.replace(old, new, 1))


def test_a_damaged_type_index_is_found_by_a_deep_verify(db: Path) -> None:
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        assert store.stats().types == {"Alpha": 7, "Omega": 5}
    flip_in_index(db, "events_by_type", b"Alpha", b"Omega")
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        # The damage is real: counts by type (read from the index) are now wrong...
        assert store.stats().types == {"Alpha": 6, "Omega": 6}
        assert [e.type for e in store.read_all()].count("Omega") == 5
        # ...and the hash chains cannot see it.
        quick = store.verify(deep=False)
        assert quick.ok
        assert any("skipped" in item for item in quick.not_checked)
        report = store.verify()
    assert not report.ok
    assert report.broken == ()
    assert report.problems
    assert all(p.startswith("database file:") for p in report.problems)
    assert any("events_by_type" in p for p in report.problems)
    assert any("integrity_check" in item for item in report.checked)


def test_an_intact_file_passes_the_deep_verify(db: Path) -> None:
    report = verify(db)
    assert report.ok
    assert any("integrity_check" in item for item in report.checked)


# -- the stream heads ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE streams SET version = 2 WHERE stream_id = 'beta'",
        "UPDATE streams SET version = 6 WHERE stream_id = 'beta'",
        "UPDATE streams SET last_position = 1 WHERE stream_id = 'beta'",
        "UPDATE streams SET last_hash = zeroblob(32) WHERE stream_id = 'beta'",
        "UPDATE streams SET stream_id = 'other' WHERE stream_id = 'beta'",
        "INSERT INTO streams VALUES ('ghost', 1, 1, zeroblob(32))",
        "INSERT OR REPLACE INTO streams SELECT stream_id, 1, last_position, last_hash "
        "FROM streams WHERE stream_id = 'beta'",
    ],
    ids=["back", "ahead", "position", "hash", "rename", "ghost", "replace"],
)
def test_a_head_that_does_not_match_its_last_event_is_refused(db: Path, statement: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        before = conn.execute("SELECT * FROM streams ORDER BY stream_id").fetchall()
        with pytest.raises(sqlite3.IntegrityError, match="stream head must name"):
            conn.execute(statement)
        assert conn.execute("SELECT * FROM streams ORDER BY stream_id").fetchall() == before
    finally:
        conn.close()
    # Appends, which write heads, still go through.
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        store.append("beta", [RawEvent("Alpha", {})], 5)
        store.append_many(
            [
                StreamAppend("new", [RawEvent("Alpha", {}) for _ in range(3)]),
                StreamAppend("gamma", [RawEvent("Omega", {})], 3),
            ]
        )
        assert [store.stream_version(s) for s in ("beta", "gamma", "new")] == [6, 4, 3]
        assert store.verify().ok


def test_a_head_cannot_be_deleted(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="DELETE is refused"):
            conn.execute("DELETE FROM streams WHERE stream_id = 'gamma'")
    finally:
        conn.close()
    assert verify(db).ok


@pytest.mark.parametrize(
    ("change", "version", "reason"),
    [
        ("version = 2", 3, "head says version 2"),
        ("last_position = 1", 5, "position"),
        ("last_hash = zeroblob(32)", 5, "another hash"),
    ],
    ids=["moved-back", "position", "hash"],
)
def test_a_head_changed_behind_the_triggers_is_reported(
    db: Path, change: str, version: int, reason: str
) -> None:
    with intruder(db) as conn:
        conn.execute(f"UPDATE streams SET {change} WHERE stream_id = 'beta'")
    report = verify(db)
    assert [(b.stream_id, b.version) for b in report.broken] == [("beta", version)]
    assert reason in report.broken[0].reason


# -- positions -----------------------------------------------------------------------------------


def test_two_events_of_a_stream_with_swapped_positions_are_reported(db: Path) -> None:
    with intruder(db) as conn:
        first, second = position_of(conn, "beta", 1), position_of(conn, "beta", 2)
        swap_positions(conn, first, second)
    report = verify(db)
    assert [(b.stream_id, b.version) for b in report.broken] == [("beta", 2)]
    assert "reordered" in report.broken[0].reason


# -- anchors: what verify alone cannot see -----------------------------------------------------


def edit_and_rechain(db: Path) -> None:
    with intruder(db) as conn:
        conn.execute(
            "UPDATE events SET data = '{\"n\":1000}' WHERE stream_id = 'beta' AND version = 2"
        )
        rechain(conn, "beta")


def delete_a_stream(db: Path) -> None:
    with intruder(db) as conn:
        conn.execute("DELETE FROM events WHERE stream_id = 'gamma'")
        conn.execute("DELETE FROM streams WHERE stream_id = 'gamma'")


def cut_a_tail(db: Path) -> None:
    with intruder(db) as conn:
        conn.execute("DELETE FROM events WHERE stream_id = 'beta' AND version > 3")
        rechain(conn, "beta")  # the head moves back to version 3


def forge_an_event(db: Path) -> None:
    """Replace alpha's last event with another (new id, new data) whose hash is valid."""
    with intruder(db) as conn:
        conn.execute(
            "UPDATE events SET event_id = randomblob(16), data = '{\"n\":-1}' "
            "WHERE stream_id = 'alpha' AND version = 4"
        )
        rechain(conn, "alpha")


def swap_across_streams(db: Path) -> None:
    with intruder(db) as conn:
        swap_positions(conn, position_of(conn, "alpha", 2), position_of(conn, "beta", 2))


def truncate_the_file(db: Path) -> None:
    for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        extra.unlink(missing_ok=True)
    db.write_bytes(b"")


def replace_the_file(db: Path) -> None:
    other = db.with_name("other.db")
    make_store(other)
    for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        extra.unlink(missing_ok=True)
    shutil.copyfile(other, db)


@pytest.mark.parametrize(
    "intrusion",
    [
        edit_and_rechain,
        delete_a_stream,
        cut_a_tail,
        forge_an_event,
        swap_across_streams,
        truncate_the_file,
        replace_the_file,
    ],
    ids=lambda f: f.__name__.replace("_", "-"),
)
def test_an_anchor_finds_what_verify_alone_cannot(
    db: Path, anchor: Anchor, intrusion: object
) -> None:
    intrusion(db)  # type: ignore[operator]
    alone = verify(db)
    assert alone.ok, alone  # the intrusion leaves every chain, head and index consistent
    report = verify(db, anchor=anchor, key=KEY)
    assert not report.ok
    assert report.broken == ()
    assert report.problems, report


def test_an_anchor_of_the_intact_store_still_verifies_after_appends(
    db: Path, anchor: Anchor
) -> None:
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        store.append("alpha", [RawEvent("Alpha", {})], 4)
    assert verify(db, anchor=anchor, key=KEY).ok


_CRASHING_WRITER = """
import os, signal, sys
import eventkeep
from eventkeep import RawEvent
from eventkeep.store.anchors import load_key

db, out, secret = sys.argv[1], sys.argv[2], sys.argv[3].encode()
store = eventkeep.open_store(f"sqlite:///{db}")
for n in range(60):
    store.append(f"s-{n % 4}", [RawEvent("Written", {"n": n, "pad": "x" * 200})])
with open(out, "wb") as file:
    file.write(store.anchor(load_key(secret)).to_json())
os.kill(os.getpid(), signal.SIGKILL)  # no close: the events live in the WAL file only
"""


def test_an_anchor_finds_wal_frames_lost_after_a_crash(tmp_path: Path) -> None:
    """A crash (or a disk that lied about fsync) that loses the last frames of the WAL file
    leaves a shorter, self-consistent history: verify alone passes, the anchor does not."""
    db, out = tmp_path / "crash.db", tmp_path / "anchor.json"
    secret = "sqlite crash test anchor secret, 40 bytes"
    done = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, str(db), str(out), secret],
        capture_output=True,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    wal = Path(f"{db}-wal")
    assert wal.stat().st_size > 60 * 200  # the appends are in the WAL, not yet checkpointed
    with wal.open("r+b") as file:  # the last frames never reached the disk
        file.truncate(wal.stat().st_size // 2)
    anchor = eventkeep.read_anchor(out.read_bytes())
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        assert 0 < store.head_position() < 60  # WAL recovery kept a prefix of the history
        alone = store.verify()
        assert alone.ok, alone
        report = store.verify(anchor=anchor, key=load_key(secret.encode()))
    assert not report.ok
    assert report.problems, report
