"""The SQLite backend's part of moving history (:mod:`eventkeep.moving`): stored events read
as they are, and a batch of exported events written as they are, in the store's write
transaction (so appends cannot interleave), through the same triggers as every append."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from eventkeep.backends.sqlite import sql
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan, Numbering, TargetHead, choose_plan
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
    removed_floor: int,
    insert_at: Callable[[sqlite3.Cursor, list[PlannedRow], Sequence[int]], int],
    ahead: ImportPlan | None = None,
) -> int:
    """Plan and write ``rows`` in the write transaction open on ``cur``; returns how many were
    written (the others were stored already). ``removed_floor``: the last position removed by
    an operation the import does not carry (see :class:`~eventkeep.store.importing.Numbering`).
    ``insert_at``: the store's insert of rows at given positions."""
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
    last = cur.execute(sql.LAST_EVENT).fetchone()
    head = int(cur.execute(sql.HEAD_POSITION).fetchone()[0])
    numbering = Numbering(head, max(int(last[0]) if last else 0, removed_floor))
    planned = choose_plan(rows, heads, stored, int(last[1]) if last else 0, numbering, ahead)
    if not planned:
        return 0
    insert_at(
        cur,
        [PlannedRow(r.stream_id, r.version, *r[3:9], r.hash, r.tags) for r in planned],
        [r.position for r in planned],
    )
    tagged = [(tag, row.position, row.type) for row in planned for tag in row.tags]
    if tagged:
        cur.executemany(sql.INSERT_TAG, tagged)
    last_of = {row.stream_id: row for row in planned}
    cur.executemany(
        sql.UPSERT_STREAM,
        [(row.stream_id, row.version, row.position, row.hash) for row in last_of.values()],
    )
    return len(planned)
