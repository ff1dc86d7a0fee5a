"""The PostgreSQL backend's lifecycle primitives: stream metadata, the operations log, and the one
removal path (see :mod:`eventkeep.store.lifecycle_store` and migration 0009).

Functions over a cursor, so that the store decides the connection and transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg

from eventkeep.backends.postgres import sql
from eventkeep.store.hashing import ChainRow
from eventkeep.store.lifecycle import (
    Deletion,
    Operation,
    Removal,
    Retention,
    Selection,
    StreamMeta,
)
from eventkeep.store.lifecycle_store import Prepare
from eventkeep.store.recorded import decode_tags

__all__ = [
    "OPERATIONS",
    "REMOVALS",
    "REMOVALS_OF",
    "STREAM_META",
    "STREAM_METAS",
    "carry_operation",
    "meta_of",
    "remove",
    "save_meta",
]

_META_COLUMNS = (
    "max_age, max_count, truncate_before, deleted_version, deleted_operation, deleted_hard"
)

STREAM_META = f"SELECT {_META_COLUMNS} FROM eventkeep_stream_meta WHERE stream_id = %s"

STREAM_METAS = f"SELECT stream_id, {_META_COLUMNS} FROM eventkeep_stream_meta ORDER BY stream_id"

SAVE_META = (
    f"INSERT INTO eventkeep_stream_meta (stream_id, {_META_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (stream_id) DO UPDATE SET max_age = excluded.max_age, "
    "max_count = excluded.max_count, truncate_before = excluded.truncate_before, "
    "deleted_version = excluded.deleted_version, deleted_operation = excluded.deleted_operation, "
    "deleted_hard = excluded.deleted_hard"
)

_OPERATION_COLUMNS = (
    "operation_id, kind, stream_id, state, recorded_at, actor, reason, events, first_position, "
    "last_position, archive_file, archive_digest"
)

OPERATIONS = (
    f"SELECT {_OPERATION_COLUMNS} FROM eventkeep_operations ORDER BY recorded_at, operation_id"
)

INSERT_OPERATION = (
    f"INSERT INTO eventkeep_operations ({_OPERATION_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

CLOSE_OPERATION = "UPDATE eventkeep_operations SET state = 'done' WHERE operation_id = %s"

_REMOVAL_COLUMNS = (
    "operation_id, stream_id, first_version, last_version, first_position, last_position, "
    "events, last_hash"
)

REMOVALS = f"SELECT {_REMOVAL_COLUMNS} FROM eventkeep_removed ORDER BY stream_id, last_version"

REMOVALS_OF = (
    f"SELECT {_REMOVAL_COLUMNS} FROM eventkeep_removed WHERE stream_id = %s ORDER BY last_version"
)

INSERT_REMOVAL = (
    f"INSERT INTO eventkeep_removed ({_REMOVAL_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)

_CHAIN_COLUMNS = (
    "stream_id, version, position, event_id, type, schema_version, recorded_at, "
    "data_bytes, metadata_bytes, hash, tags"
)

SELECT_STREAM_PREFIX = (
    f"SELECT {_CHAIN_COLUMNS} FROM events WHERE stream_id = %s AND version <= %s ORDER BY version"
)

SELECT_LOG_PREFIX = f"SELECT {_CHAIN_COLUMNS} FROM events WHERE position <= %s ORDER BY position"

DELETE_EVENTS = "DELETE FROM events WHERE stream_id = %s AND version BETWEEN %s AND %s"

DELETE_TAGS = "DELETE FROM event_tags WHERE tag = %s AND position = %s"


def meta_of(row: Any) -> StreamMeta:
    max_age, max_count, before, version, operation, hard = row
    max_count = None if max_count is None else int(max_count)
    before = None if before is None else int(before)
    retention = None
    if max_age is not None or max_count is not None or before is not None:
        retention = Retention(max_age, max_count, before)
    deletion = None if version is None else Deletion(int(version), operation, bool(hard))
    return StreamMeta(retention, deletion)


def save_meta(cur: psycopg.Connection[Any], stream_id: str, meta: StreamMeta) -> None:
    retention = meta.retention or Retention()
    deletion = meta.deletion
    cur.execute(
        SAVE_META,
        (
            stream_id,
            retention.max_age,
            retention.max_count,
            retention.truncate_before,
            None if deletion is None else deletion.version,
            None if deletion is None else deletion.operation_id,
            None if deletion is None else deletion.hard,
        ),
    )


def operation_of(row: Any) -> Operation:
    op_id, kind, stream, state, at, by, reason, events, first, last, name, digest = row
    return Operation(
        op_id,
        kind,
        stream,
        state,
        int(at),
        by,
        reason,
        int(events),
        None if first is None else int(first),
        None if last is None else int(last),
        name,
        digest,
    )


def removal_of(row: Any) -> Removal:
    op_id, stream, first_v, last_v, first_p, last_p, events, last_hash = row
    return Removal(
        op_id,
        stream,
        int(first_v),
        int(last_v),
        int(first_p),
        int(last_p),
        int(events),
        bytes(last_hash),
    )


def remove(
    cur: psycopg.Connection[Any],
    selection: Selection | None,
    stream_id: str | None,
    prepare: Prepare,
) -> Operation | None:
    """The one removal path, in the write transaction open on ``cur``."""
    rows: list[ChainRow] = []
    if selection is not None:
        if selection.stream_id is not None:
            found = cur.execute(
                SELECT_STREAM_PREFIX,
                (selection.stream_id, selection.through_version),
                binary=True,
            )
        else:
            found = cur.execute(SELECT_LOG_PREFIX, (selection.through_position,), binary=True)
        rows = [_chain_row(row) for row in found.fetchall()]
    version = 0
    if stream_id is not None:
        head = cur.execute(sql.STREAM_VERSION, (stream_id,)).fetchone()
        version = int(head[0]) if head else 0
    planned = prepare(rows, version)
    if planned is None:
        return None
    op = planned.operation
    cur.execute(INSERT_OPERATION, op)
    with cur.cursor() as many:
        many.executemany(INSERT_REMOVAL, planned.removals)
        many.executemany(
            DELETE_EVENTS,
            [(r.stream_id, r.first_version, r.last_version) for r in planned.removals],
        )
        many.executemany(DELETE_TAGS, [(tag, row.position) for row in rows for tag in row.tags])
    if op.state == "open":
        cur.execute(CLOSE_OPERATION, (op.operation_id,))
    for meta_stream, meta in planned.meta.items():
        save_meta(cur, meta_stream, meta)
    return op


OPERATION_EXISTS = "SELECT 1 FROM eventkeep_operations WHERE operation_id = %s"


def carry_operation(conn: psycopg.Connection[Any], op: Operation, removals: list[Removal]) -> bool:
    """Write another store's operation and its removals, in the transaction open on ``conn``,
    the way the removal path does (open, removals, closed); False when it is here."""
    if conn.execute(OPERATION_EXISTS, (op.operation_id,)).fetchone() is not None:
        return False
    conn.execute(INSERT_OPERATION, op._replace(state="open" if removals else "done"))
    if removals:
        with conn.cursor() as many:
            many.executemany(INSERT_REMOVAL, removals)
        conn.execute(CLOSE_OPERATION, (op.operation_id,))
    return True


def _chain_row(row: Any) -> ChainRow:
    s, v, p, e, t, sv, r, d, m, h, tags = row
    return ChainRow(
        s, int(v), int(p), bytes(e), t, sv, int(r), bytes(d), bytes(m), bytes(h), decode_tags(tags)
    )
