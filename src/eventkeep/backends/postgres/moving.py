"""The PostgreSQL backend's part of moving history (:mod:`eventkeep.moving`).

An import batch is one transaction: the sequencer's lock first (appends wait; positions stay
in commit order), then, pipelined, the heads of its streams and the log's last event; the plan
(:func:`eventkeep.store.importing.plan_import`, or the plan ``copy_store`` made ahead on its
reading thread when the target is as it predicted); then the rows by binary ``COPY``, numbered
above the head, their tags by ``COPY``, and the streams' heads upserted (the head trigger
checks each against its last event, as for every append). The append-only triggers stay in
place throughout: an import only inserts.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.adapt import PyFormat
from psycopg.errors import UniqueViolation

from eventkeep.backends.postgres import sql
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan, Numbering, TargetHead, choose_plan
from eventkeep.store.recorded import decode_tags, from_micros
from eventkeep.store.tags import encode_tags

__all__ = ["PG_EPOCH_US", "chain_rows", "import_rows"]

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
        _copy(conn, planned)
        last_of: dict[str, ChainRow] = {row.stream_id: row for row in planned}
        with conn.pipeline():
            conn.execute(
                sql.UPSERT_IMPORTED_HEADS,
                (
                    list(last_of),
                    [row.version for row in last_of.values()],
                    [row.hash for row in last_of.values()],
                    [from_micros(row.recorded_at_us) for row in last_of.values()],
                ),
            )
            conn.execute(sql.NOTIFY_HEAD, (planned[-1].position,))
    return len(planned)


def _copy(conn: psycopg.Connection[Any], rows: list[ChainRow]) -> None:
    """The rows (and their tags) by binary COPY, at their planned positions."""
    epoch = PG_EPOCH_US
    with conn.cursor() as cur:
        # bytea columns by the dumper of bytes (C), not the one set_types finds by type oid
        # (dbapi20's Binary, in Python: a fifth of the client's time, measured).
        cur.adapters.register_dumper(bytes, cur.adapters.get_dumper(bytes, PyFormat.BINARY))
        with cur.copy(sql.COPY_EVENTS) as copy:
            copy.set_types(list(sql.COPY_EVENT_TYPES))
            write = copy.write_row
            for row in rows:
                write(
                    (
                        row.position,
                        row.stream_id,
                        row.version,
                        row.event_id,
                        row.type,
                        row.schema_version,
                        row.recorded_at_us - epoch,
                        row.data,
                        row.metadata,
                        row.hash,
                        encode_tags(row.tags) if row.tags else None,
                    )
                )
        tagged = [(tag, row.position, row.type) for row in rows for tag in row.tags]
        if tagged:
            with cur.copy(sql.COPY_TAGS) as copy:
                copy.set_types(list(sql.COPY_TAG_TYPES))
                for item in tagged:
                    copy.write_row(item)
