"""The PostgreSQL backend's part of moving history (:mod:`eventkeep.moving`).

An import batch is one transaction: the sequencer's lock first (appends wait; positions stay
in commit order), then, pipelined, the heads of its streams and the log's last event; the plan
(:func:`eventkeep.store.importing.plan_import`, or the plan ``copy_store`` made ahead on its
reading thread when the target is as it predicted); then the rows by binary ``COPY``, numbered
above the head, and their tags by ``COPY``. A stream's head is its last event (migration
0018): nothing else is written. The append-only triggers stay in place throughout: an import
only inserts.
"""

from __future__ import annotations

import struct
from typing import Any

import psycopg
from psycopg.errors import UniqueViolation

from eventkeep.backends.postgres import sql
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan, Numbering, TargetHead, choose_plan
from eventkeep.store.recorded import decode_tags
from eventkeep.store.tags import encode_tags

__all__ = ["PG_EPOCH_US", "Encoded", "chain_rows", "copy_rows", "encode_rows", "import_rows"]

PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01 (PostgreSQL's epoch) in microseconds since the Unix epoch."""

_NEW = TargetHead(0, b"")


def chain_rows(rows: list[Any]) -> list[ChainRow]:
    return [
        ChainRow(s, v, p, e, t, sv, r, d, m, h, decode_tags(g))
        for s, v, p, e, t, sv, r, d, m, h, g in rows
    ]


def import_rows(
    conn: psycopg.Connection[Any],
    rows: list[ChainRow],
    removed_floor: int,
    ahead: ImportPlan | None = None,
) -> int:
    """Plan and write ``rows`` in one transaction on ``conn`` (autocommit, configured for the
    store); returns how many were written (the others were stored already). ``removed_floor``:
    the last position removed by an operation the import does not carry (see
    :class:`~eventkeep.store.importing.Numbering`).

    The events stored under the batch's ids are looked up only when some event's version is
    not above its stream's head (it may be stored: a re-run import), or when the event id
    index refused the COPY (an id stored in another stream): then the batch is planned again
    with them, in a new transaction, and the planner says what is wrong.
    """
    try:
        return _import(conn, rows, removed_floor, ahead, lookup=False)
    except UniqueViolation:
        return _import(conn, rows, removed_floor, None, lookup=True)


def _import(
    conn: psycopg.Connection[Any],
    rows: list[ChainRow],
    removed_floor: int,
    ahead: ImportPlan | None,
    *,
    lookup: bool,
) -> int:
    with conn.transaction():
        lock_cur = conn.cursor(binary=True)
        heads_cur = conn.cursor(binary=True)
        last_cur = conn.cursor(binary=True)
        streams = list(dict.fromkeys(row.stream_id for row in rows))
        with conn.pipeline():
            # The sequencer's lock first: the statements after it read what committed before.
            lock_cur.execute(sql.APPEND_POSITION)
            heads_cur.execute(sql.IMPORT_HEADS, (streams,))
            last_cur.execute(sql.LAST_EVENT)
        position = lock_cur.fetchone()
        assert position is not None
        heads = {s: TargetHead(int(v), bytes(h)) for s, v, h in heads_cur.fetchall()}
        last = last_cur.fetchone()
        stored: dict[bytes, ChainRow] = {}
        if lookup or any(row.version <= heads.get(row.stream_id, _NEW).version for row in rows):
            found = conn.execute(
                sql.STORED_EVENTS, ([row.event_id for row in rows],), binary=True
            ).fetchall()
            stored = {row.event_id: row for row in chain_rows(found)}
        numbering = Numbering(int(position[0]), max(int(last[0]) if last else 0, removed_floor))
        planned = choose_plan(rows, heads, stored, int(last[1]) if last else 0, numbering, ahead)
        if not planned:
            return 0
        copy_rows(conn, planned)
        conn.execute(sql.NOTIFY_HEAD, (planned[-1].position,))
    return len(planned)


Encoded = tuple[bytes, bytes | None]
"""A batch's binary COPY data: its events', and its tags' (None: no tag)."""


def copy_rows(
    conn: psycopg.Connection[Any], rows: list[ChainRow], encoded: Encoded | None = None
) -> None:
    """The rows (and their tags) by binary COPY, at their planned positions; ``encoded``:
    their COPY data (:func:`encode_rows`) made ahead, on another thread."""
    events, tags = encode_rows(rows) if encoded is None else encoded
    with conn.cursor() as cur:
        with cur.copy(sql.COPY_EVENTS) as copy:
            copy.write(events)
        if tags is not None:
            with cur.copy(sql.COPY_TAGS) as copy:
                copy.write(tags)


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"
_ROW_START = struct.Struct("!hiqi").pack  # 11 fields; the position (8 bytes); stream id's size
_SIZED_INT8 = struct.Struct("!iq").pack
_SIZE = struct.Struct("!i").pack
_UUID_SIZE = _SIZE(16)
_INT4_SIZE = _SIZE(4)
_HASH_SIZE = _SIZE(32)
_NULL = _SIZE(-1)
_TAG_FIELDS = struct.pack("!h", 3)  # tag, position, type


def encode_rows(rows: list[ChainRow]) -> Encoded:
    """The binary COPY data of ``rows`` for :data:`sql.COPY_EVENTS` (columns as in
    :data:`sql.COPY_EVENT_TYPES`: the event id's 16 bytes for its uuid, ``recorded_at`` as
    microseconds since PostgreSQL's epoch), and of their tags for :data:`sql.COPY_TAGS`.
    Built with ``struct``, about half the client time of psycopg's ``write_row`` per row
    (measured), and on the reading thread of a copy."""
    epoch = PG_EPOCH_US
    size = _SIZE
    out = [_COPY_HEADER]
    add = out.append
    tag_rows = [_COPY_HEADER]
    for row in rows:
        stream = row.stream_id.encode()
        kind = row.type.encode()
        data, metadata = row.data, row.metadata
        tags = _NULL
        if row.tags:
            text = encode_tags(row.tags).encode()  # type: ignore[union-attr]
            tags = size(len(text)) + text
            at = _SIZED_INT8(8, row.position)
            for tag in row.tags:
                name = tag.encode()
                tag_rows.append(
                    b"".join((_TAG_FIELDS, size(len(name)), name, at, size(len(kind)), kind))
                )
        add(
            b"".join(
                (
                    _ROW_START(11, 8, row.position, len(stream)),
                    stream,
                    _SIZED_INT8(8, row.version),
                    _UUID_SIZE,
                    row.event_id,
                    size(len(kind)),
                    kind,
                    _INT4_SIZE,
                    size(row.schema_version),
                    _SIZED_INT8(8, row.recorded_at_us - epoch),
                    size(len(data)),
                    data,
                    size(len(metadata)),
                    metadata,
                    _HASH_SIZE,
                    row.hash,
                    tags,
                )
            )
        )
    add(_COPY_TRAILER)
    if len(tag_rows) == 1:
        return b"".join(out), None
    tag_rows.append(_COPY_TRAILER)
    return b"".join(out), b"".join(tag_rows)
