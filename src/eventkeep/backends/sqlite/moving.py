"""The SQLite backend's part of moving history (:mod:`eventkeep.moving`): stored events read
as they are, and a batch of exported events written as they are, in the store's write
transaction (so appends cannot interleave), through the same triggers as every append."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from eventkeep.backends.sqlite import sql
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import TargetHead, plan_import
from eventkeep.store.planner import PlannedRow
from eventkeep.store.recorded import decode_tags

__all__ = ["chain_rows", "export_statement", "import_rows"]

_MAX_PARAMS = 500


def export_statement(after: int, limit: int, prefix: str | None) -> tuple[str, tuple[Any, ...]]:
    """The statement (and its parameters) reading a page of stored events for an export."""
    if prefix is None:
        return sql.EXPORT_ROWS.format(where=""), (after, limit)
    return sql.EXPORT_ROWS.format(where=sql.WHERE_PREFIX), (
        after,
        prefix,
        len(prefix),
        prefix,
        limit,
    )


def chain_rows(rows: list[Any]) -> list[ChainRow]:
    return [
        ChainRow(s, v, p, e, t, sv, r, d, m, h, decode_tags(g))
        for s, v, p, e, t, sv, r, d, m, h, g in rows
    ]


def import_rows(
    cur: sqlite3.Cursor,
    rows: list[ChainRow],
    insert: Callable[[sqlite3.Cursor, list[PlannedRow]], int],
) -> int:
    """Plan and write ``rows`` in the write transaction open on ``cur``; returns how many were
    written (the others were stored already). ``insert``: the store's insert of rows, numbered
    as appends number them; returns the last one's position."""
    heads: dict[str, TargetHead] = {}
    for stream_id in dict.fromkeys(row.stream_id for row in rows):
        found = cur.execute(sql.STREAM_HEAD, (stream_id,)).fetchone()
        if found is not None:
            heads[stream_id] = TargetHead(found[0], found[1])
    stored: dict[bytes, ChainRow] = {}
    ids = [row.event_id for row in rows]
    for start in range(0, len(ids), _MAX_PARAMS):
        chunk = ids[start : start + _MAX_PARAMS]
        statement = sql.STORED_EVENTS.format(marks=",".join("?" * len(chunk)))
        for found in chain_rows(cur.execute(statement, chunk).fetchall()):
            stored[found.event_id] = found
    last = cur.execute(sql.LAST_RECORDED_AT).fetchone()
    planned = plan_import(rows, heads, stored, int(last[0]) if last else 0)
    if not planned:
        return 0
    last_position = insert(
        cur,
        [PlannedRow(r.stream_id, r.version, *r[3:9], r.hash, r.tags) for r in planned],
    )
    first = last_position - len(planned) + 1
    tagged = [
        (tag, first + offset, row.type) for offset, row in enumerate(planned) for tag in row.tags
    ]
    if tagged:
        cur.executemany(sql.INSERT_TAG, tagged)
    last_of: dict[str, tuple[int, ChainRow]] = {}
    for offset, row in enumerate(planned):
        last_of[row.stream_id] = (offset, row)
    cur.executemany(
        sql.UPSERT_STREAM,
        [
            (row.stream_id, row.version, first + offset, row.hash)
            for offset, row in last_of.values()
        ],
    )
    return len(planned)
