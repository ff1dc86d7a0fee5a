"""The PostgreSQL backend's part of moving history (:mod:`eventkeep.moving`).

An import batch is one transaction: the sequencer's lock first (appends wait; positions stay
in commit order), then, pipelined, the heads of its streams, the events stored under its ids
and the log's head; the plan (:func:`eventkeep.store.importing.plan_import`); then the rows
by binary ``COPY``, numbered above the head, their tags by ``COPY``, and the streams' heads
upserted (the head trigger checks each against its last event, as for every append).
The append-only triggers stay in place throughout: an import only inserts.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from eventkeep.backends.postgres import sql
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import TargetHead, plan_import
from eventkeep.store.recorded import decode_tags, from_micros
from eventkeep.store.tags import encode_tags

__all__ = ["chain_rows", "import_rows"]


def chain_rows(rows: list[Any]) -> list[ChainRow]:
    return [
        ChainRow(s, v, p, e, t, sv, r, d, m, h, decode_tags(g))
        for s, v, p, e, t, sv, r, d, m, h, g in rows
    ]


def import_rows(conn: psycopg.Connection[Any], rows: list[ChainRow]) -> int:
    """Plan and write ``rows`` in one transaction on ``conn`` (autocommit, configured for the
    store); returns how many were written (the others were stored already)."""
    with conn.transaction():
        head_position = conn.execute("SELECT eventkeep_append_position()").fetchone()
        heads_cur = conn.cursor(binary=True)
        ids_cur = conn.cursor(binary=True)
        last_cur = conn.cursor(binary=True)
        streams = list(dict.fromkeys(row.stream_id for row in rows))
        with conn.pipeline():
            heads_cur.execute(sql.IMPORT_HEADS, (streams,))
            ids_cur.execute(sql.STORED_EVENTS, ([UUID(bytes=row.event_id) for row in rows],))
            last_cur.execute(sql.LAST_EVENT)
        heads = {s: TargetHead(int(v), bytes(h)) for s, v, h in heads_cur.fetchall()}
        stored = {found.event_id: found for found in chain_rows(ids_cur.fetchall())}
        last = last_cur.fetchone()
        planned = plan_import(rows, heads, stored, int(last[1]) if last else 0)
        if not planned:
            return 0
        assert head_position is not None
        first = int(head_position[0]) + 1
        _copy(conn, planned, first)
        last_of: dict[str, ChainRow] = {row.stream_id: row for row in planned}
        conn.execute(
            sql.UPSERT_IMPORTED_HEADS,
            (
                list(last_of),
                [row.version for row in last_of.values()],
                [row.hash for row in last_of.values()],
                [from_micros(row.recorded_at_us) for row in last_of.values()],
            ),
        )
        conn.execute(sql.NOTIFY_HEAD, (first + len(planned) - 1,))
    return len(planned)


def _copy(conn: psycopg.Connection[Any], rows: list[ChainRow], first: int) -> None:
    """The rows (and their tags) by binary COPY, numbered from position ``first``."""
    with conn.cursor() as cur:
        with cur.copy(sql.COPY_EVENTS) as copy:
            copy.set_types(list(sql.COPY_EVENT_TYPES))
            write = copy.write_row
            for position, row in enumerate(rows, first):
                write(
                    (
                        position,
                        row.stream_id,
                        row.version,
                        UUID(bytes=row.event_id),
                        row.type,
                        row.schema_version,
                        from_micros(row.recorded_at_us),
                        row.data,
                        row.metadata,
                        row.hash,
                        encode_tags(row.tags) if row.tags else None,
                    )
                )
        tagged = [
            (tag, position, row.type)
            for position, row in enumerate(rows, first)
            for tag in row.tags
        ]
        if tagged:
            with cur.copy(sql.COPY_TAGS) as copy:
                copy.set_types(list(sql.COPY_TAG_TYPES))
                for item in tagged:
                    copy.write_row(item)
