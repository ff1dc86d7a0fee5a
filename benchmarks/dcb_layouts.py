"""Layouts of SQLite's tag index, measured (not a test): what a one-event append with two tags
costs against a plain one, per layout, with the flush on (``synchronous=FULL``, as the store).

    python -m benchmarks.dcb_layouts                      # 3,000 appends of each kind
    python -m benchmarks.dcb_layouts --appends 5000 --tags repeated --sync OFF

Each layout gets its own database file with eventkeep's whole schema (an opened store's), its
``event_tags`` table replaced by the layout's. In each file, the statements the store runs for
an append (``BEGIN IMMEDIATE``, ``PRAGMA data_version``, the head, the event's ``INSERT``, the
tag rows, the head's upsert, ``COMMIT``) are run for a plain append (a new stream, no tags) and
for a tagged one (its own ``$dcb:`` stream, two tags), alternating every 10 appends and across
the layouts, after 5,000 of each to give the b-trees some depth. No Python of eventkeep's runs
in the timed part: these are the floors of the two appends. Reported: median µs per append,
WAL pages per commit (the WAL's growth over the appends, checkpoints switched off meanwhile)
and, for the tagged append, how many of those pages each b-tree wrote (``dbstat``).

Layouts:

- ``tag,position,type``: eventkeep's (migration 0006): ``PRIMARY KEY (tag, position)``,
  ``WITHOUT ROWID``, the type in the row (a query item's types checked in the index);
- ``tag,position``: the same without the type (items with types would check it in ``events``);
- ``rowid+index``: a rowid table and an index on ``(tag, position)``: two b-trees;
- ``interned``: tags numbered in a ``tags`` table (``tag UNIQUE``), the index of
  ``(tag_id, position)`` pairs: short entries, but a new tag is written twice more;
- ``hash64``: the index keyed by a 64-bit hash of the tag: the shortest entries (a query would
  have to recheck the event's tags, collisions being possible).

``--tags unique`` (the DCB benchmark's: a new username per append) or ``repeated`` (each tag
drawn from 1,000 values: many events per tag, as courses and students).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventkeep
from eventkeep.backends.sqlite import sql

CHUNK = 10
FRAME = 4096 + 24  # a WAL frame: its header and one page (eventkeep's page size is 4096)


def _hash64(tag: str) -> int:
    return int.from_bytes(hashlib.blake2b(tag.encode(), digest_size=8).digest(), "big", signed=True)


TagWriter = Callable[[sqlite3.Connection, list[str], int, str], None]


def _rows(statement: str, row: Callable[[str, int, str], tuple[object, ...]]) -> TagWriter:
    def write(conn: sqlite3.Connection, tags: list[str], position: int, type_: str) -> None:
        conn.executemany(statement, [row(tag, position, type_) for tag in tags])

    return write


def _interned(conn: sqlite3.Connection, tags: list[str], position: int, type_: str) -> None:
    for tag in tags:
        conn.execute("INSERT OR IGNORE INTO tags (tag) VALUES (?)", (tag,))
    ids = [conn.execute("SELECT id FROM tags WHERE tag = ?", (t,)).fetchone()[0] for t in tags]
    conn.executemany(
        "INSERT INTO event_tags (tag_id, position) VALUES (?, ?)", [(i, position) for i in ids]
    )


LAYOUTS: dict[str, tuple[str, TagWriter]] = {
    "tag,position,type": (
        "CREATE TABLE event_tags (tag TEXT NOT NULL, position INTEGER NOT NULL, "
        "type TEXT NOT NULL, PRIMARY KEY (tag, position)) WITHOUT ROWID",
        _rows(sql.INSERT_TAG, lambda tag, position, type_: (tag, position, type_)),
    ),
    "tag,position": (
        "CREATE TABLE event_tags (tag TEXT NOT NULL, position INTEGER NOT NULL, "
        "PRIMARY KEY (tag, position)) WITHOUT ROWID",
        _rows(
            "INSERT INTO event_tags (tag, position) VALUES (?, ?)",
            lambda tag, position, _: (tag, position),
        ),
    ),
    "rowid+index": (
        "CREATE TABLE event_tags (tag TEXT NOT NULL, position INTEGER NOT NULL, "
        "type TEXT NOT NULL); CREATE UNIQUE INDEX event_tags_by_tag ON event_tags (tag, position)",
        _rows(sql.INSERT_TAG, lambda tag, position, type_: (tag, position, type_)),
    ),
    "interned": (
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE); "
        "CREATE TABLE event_tags (tag_id INTEGER NOT NULL, position INTEGER NOT NULL, "
        "PRIMARY KEY (tag_id, position)) WITHOUT ROWID",
        _interned,
    ),
    "hash64": (
        "CREATE TABLE event_tags (tag_hash INTEGER NOT NULL, position INTEGER NOT NULL, "
        "PRIMARY KEY (tag_hash, position)) WITHOUT ROWID",
        _rows(
            "INSERT INTO event_tags (tag_hash, position) VALUES (?, ?)",
            lambda tag, position, _: (_hash64(tag), position),
        ),
    ),
}


def open_layout(path: Path, layout: str, sync: str) -> sqlite3.Connection:
    with eventkeep.open_store(f"sqlite:///{path}"):
        pass  # eventkeep's whole schema, migrations applied
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("DROP TABLE event_tags")  # its triggers go with it
    conn.executescript(LAYOUTS[layout][0])
    return conn


def appender(
    conn: sqlite3.Connection, layout: str, tagged: bool, tags: str
) -> Callable[[int], None]:
    write_tags = LAYOUTS[layout][1]
    run = uuid.uuid4().hex[:8]
    insert = sql.insert_events(1, at=False, tagged=True)

    def op(n: int) -> None:
        event_id = uuid.uuid4().bytes
        if tagged:
            stream_id, type_ = f"$dcb:{uuid.UUID(bytes=event_id)}", "UsernameClaimed"
            key = f"{run}{n}" if tags == "unique" else str(n * 7919 % 1000)
            names = [f"user:{key}", f"username:{key}"]
            encoded = '["' + '","'.join(names) + '"]'
        else:
            stream_id, type_, names, encoded = f"user-{run}-{n}", "Registered", [], None
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql.DATA_VERSION).fetchone()
        conn.execute(sql.STREAM_HEAD, (stream_id,)).fetchone()
        now, digest = time.time_ns() // 1000, os.urandom(32)
        cur = conn.execute(
            insert, (stream_id, 1, event_id, type_, 1, now, b'{"n":1}', b"{}", digest, encoded)
        )
        position = cur.lastrowid
        assert position is not None
        if names:
            write_tags(conn, names, position, type_)
        conn.execute(sql.UPSERT_STREAM, (stream_id, 1, position, digest))
        conn.execute("COMMIT")

    return op


def wal_pages(path: Path, start: int) -> list[int]:
    """The page numbers of the WAL's frames from byte ``start`` on."""
    data = (path.parent / (path.name + "-wal")).read_bytes()
    return [
        struct.unpack(">I", data[at : at + 4])[0] for at in range(max(32, start), len(data), FRAME)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=3000, help="of each kind, per layout")
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL", "OFF"])
    parser.add_argument("--tags", default="unique", choices=["unique", "repeated"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eventkeep-dcb-layouts-") as tmp:
        files = {}
        for n, layout in enumerate(LAYOUTS):
            path = Path(tmp) / f"{n}.db"
            conn = open_layout(path, layout, args.sync)
            ops = {
                "plain": appender(conn, layout, False, args.tags),
                "tagged": appender(conn, layout, True, args.tags),
            }
            for i in range(5000):
                ops["plain"](10**8 + i)
                ops["tagged"](10**8 + i)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            files[layout] = (conn, path, ops)
        times = collections.defaultdict(list)
        pages: dict[tuple[str, str], int] = collections.Counter()
        owners: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for start in range(0, args.appends, CHUNK):
            for layout, (conn, path, ops) in files.items():
                for kind, op in ops.items():
                    wal = path.parent / (path.name + "-wal")
                    before = wal.stat().st_size
                    for i in range(start, start + CHUNK):
                        began = time.perf_counter()
                        op(i)
                        times[layout, kind].append(time.perf_counter() - began)
                    written = wal_pages(path, before)
                    pages[layout, kind] += len(written)
                    if kind == "tagged" and start % 100 == 0:  # a sample: dbstat walks the file
                        owner = dict(conn.execute("SELECT pageno, name FROM dbstat").fetchall())
                        owners[layout].update(owner.get(p, "?") for p in written)
            if start % 500 == 0:
                for conn, _, _ in files.values():
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(
            f"SQLite {sqlite3.sqlite_version}, synchronous={args.sync}, tags {args.tags}, "
            f"{args.appends} appends of each kind per layout, alternating every {CHUNK}\n"
        )
        print(
            "| layout | plain µs | tagged µs | tagged / plain | WAL pages: plain | tagged "
            "| of the tagged: tag index (and tags table) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for layout, (conn, _, _) in files.items():
            plain, tagged = (statistics.median(times[layout, k]) * 1e6 for k in ("plain", "tagged"))
            plain_pages, tagged_pages = (
                pages[layout, k] / args.appends for k in ("plain", "tagged")
            )
            sampled = owners[layout]
            total = sum(sampled.values()) or 1
            index = sum(
                v
                for k, v in sampled.items()
                if k.startswith(("event_tags", "tags", "sqlite_autoindex_tags"))
            )
            print(
                f"| {layout} | {plain:.0f} | {tagged:.0f} | {tagged / plain:.2f}x "
                f"| {plain_pages:.2f} | {tagged_pages:.2f} | {tagged_pages * index / total:.2f} |"
            )
            conn.close()


if __name__ == "__main__":
    main()
