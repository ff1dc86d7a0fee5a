"""Every SQL statement the SQLite backend runs, one named constant each."""

from __future__ import annotations

import functools

# Columns in the order RecordedEvent takes them (codec last, added in Python).
_RECORD = (
    "stream_id, version, position, event_id, type, schema_version, data, metadata, recorded_at, "
    "tags"
)

STREAM_HEAD = "SELECT version, last_hash FROM streams WHERE stream_id = ?"

# Changes when another connection has committed since this connection last asked.
DATA_VERSION = "PRAGMA data_version"

LAST_RECORDED_AT = "SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1"

LAST_EVENT = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"

LAST_EVENT_POSITION = "SELECT MAX(position) FROM events"

# Parameters in the order of ``planner.PlannedRow`` (its tags encoded, see dcb.encode_tags).
INSERT_EVENT = (
    "INSERT INTO events (stream_id, version, event_id, type, schema_version, recorded_at, data, "
    "metadata, hash, tags) VALUES (?, ?, ?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT), ?, ?)"
)


@functools.cache
def insert_events(rows: int, *, at: bool, tagged: bool) -> str:
    """One INSERT of ``rows`` events (one statement is all or none, with no savepoint, and
    costs a quarter less per row than the same rows through executemany). ``at``: each row
    starts with its position; ``tagged``: each row ends with its tags (else they are NULL).
    Callers use a handful of row counts (see ``writing.chunk_sizes``), so the texts stay few
    and their prepared statements stay cached."""
    position = "position, " if at else ""
    values = "(" + ("?, " if at else "") + _EVENT_VALUES + (", ?)" if tagged else ", NULL)")
    return (
        f"INSERT INTO events ({position}stream_id, version, event_id, type, schema_version, "
        f"recorded_at, data, metadata, hash, tags) VALUES " + ", ".join([values] * rows)
    )


_EVENT_VALUES = "?, ?, ?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT), ?"

INSERT_TAG = "INSERT INTO event_tags (tag, position, type) VALUES (?, ?, ?)"

LAST_INSERT_POSITION = "SELECT last_insert_rowid()"

UPSERT_STREAM = (
    "INSERT INTO streams (stream_id, version, last_position, last_hash) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "last_position = excluded.last_position, last_hash = excluded.last_hash"
)

# ``{marks}`` is filled with one ``?`` per event id.
STORED_IDENTITIES = (
    "SELECT event_id, stream_id, version, position, type, CAST(data AS BLOB) "
    "FROM events WHERE event_id IN ({marks})"
)

# A stream read that returns nothing when the stream has a tombstone (``live`` reads: one
# statement for the common case; see ``EventStore._paged_stream``).
_NOT_DELETED = (
    " AND NOT EXISTS (SELECT 1 FROM eventkeep_stream_meta "
    "WHERE stream_id = ? AND deleted_version IS NOT NULL)"
)


def read_stream(*, backwards: bool, live: bool) -> str:
    """The statement of a page of a stream: parameters stream id, lowest and highest version,
    (the stream id again when ``live``,) limit."""
    return _READ_STREAM[backwards, live]


_READ_STREAM = {
    (backwards, live): (
        f"SELECT {_RECORD} FROM events WHERE stream_id = ? AND version >= ? "
        f"AND version <= ?{_NOT_DELETED if live else ''} "
        f"ORDER BY version{' DESC' if backwards else ''} LIMIT ?"
    )
    for backwards in (False, True)
    for live in (False, True)
}

# ``{where}`` adds the optional type and stream-prefix filters.
READ_ALL = f"SELECT {_RECORD} FROM events WHERE position > ?{{where}} ORDER BY position LIMIT ?"

WHERE_TYPES = " AND type IN ({marks})"

WHERE_PREFIX = " AND stream_id >= ? AND substr(stream_id, 1, ?) = ?"

STREAM_VERSION = "SELECT version FROM streams WHERE stream_id = ?"

LIST_STREAMS = (
    "SELECT stream_id, version, last_position FROM streams "
    "WHERE stream_id >= ? AND substr(stream_id, 1, ?) = ? ORDER BY stream_id LIMIT ?"
)

# The log's head: its last event, or the last one a lifecycle operation removed if that is higher
# (positions are never given twice).
HEAD_POSITION = (
    "SELECT max(COALESCE((SELECT MAX(position) FROM events), 0), "
    "COALESCE((SELECT MAX(last_position) FROM eventkeep_removed), 0))"
)

# The position new events must be numbered above when the log's last events were removed (else
# NULL: SQLite numbers them after the last stored event, as always).
POSITION_FLOOR = (
    "SELECT MAX(last_position) FROM eventkeep_removed "
    "WHERE last_position > (SELECT COALESCE(MAX(position), 0) FROM events)"
)

COUNT_EVENTS = "SELECT COUNT(*) FROM events"

COUNT_STREAMS = "SELECT COUNT(*) FROM streams"

COUNT_BY_TYPE = "SELECT type, COUNT(*) FROM events GROUP BY type ORDER BY type"

CHAIN_ROWS = (
    "SELECT stream_id, version, position, event_id, type, schema_version, recorded_at, "
    "CAST(data AS BLOB), CAST(metadata AS BLOB), hash, tags FROM events "
    "ORDER BY stream_id, version"
)

STREAM_HEADS = "SELECT stream_id, version, last_position, last_hash FROM streams"

# integrity_check, not quick_check: only it also checks that every index holds exactly the
# entries of its table (a damaged events_by_type gives wrong read_all(types=...) and stats()).
INTEGRITY_CHECK = "PRAGMA integrity_check"

# (event tags not in event_tags, event_tags entries not among the event tags): both 0 when the
# index holds exactly what the (hashed) tags of the events say.
_EVENT_TAGS = (
    "SELECT j.value, e.position, e.type FROM events AS e, json_each(e.tags) AS j "
    "WHERE e.tags IS NOT NULL"
)
TAG_INDEX_DIFFERENCES = (
    f"SELECT (SELECT count(*) FROM ({_EVENT_TAGS} EXCEPT "
    "SELECT tag, position, type FROM event_tags)), "
    "(SELECT count(*) FROM (SELECT tag, position, type FROM event_tags EXCEPT "
    f"{_EVENT_TAGS}))"
)

ANCHOR_ROWS = (
    "SELECT position, stream_id, version, hash FROM events WHERE position > ? AND position <= ? "
    "ORDER BY position"
)

# SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum.
ANCHOR_HEADS = (
    "SELECT stream_id, MAX(version), position, hash FROM events WHERE position <= ? "
    "GROUP BY stream_id ORDER BY stream_id"
)

CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS eventkeep_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)

SCHEMA_VERSION = "SELECT COALESCE(MAX(version), 0) FROM eventkeep_migrations"

MIGRATIONS_TABLE_EXISTS = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'eventkeep_migrations'"
)

RECORD_MIGRATION = (
    "INSERT INTO eventkeep_migrations (version, name, applied_at) "
    "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
)

SAVE_SNAPSHOT = (
    "INSERT OR REPLACE INTO snapshots (stream_id, version, type, schema_version, data, "
    "recorded_at) VALUES (?, ?, ?, ?, ?, ?)"
)

LOAD_SNAPSHOT = (
    "SELECT stream_id, version, type, schema_version, data, recorded_at FROM snapshots "
    "WHERE stream_id = ? AND version <= ? ORDER BY version DESC LIMIT 1"
)

DELETE_SNAPSHOTS = "DELETE FROM snapshots WHERE stream_id >= ? AND substr(stream_id, 1, ?) = ?"

CHECKPOINT = "SELECT position FROM checkpoints WHERE name = ?"

CHECKPOINTS = "SELECT name, position FROM checkpoints ORDER BY name"

INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO NOTHING"
)

# Compare-and-set: no row changes unless the checkpoint is still where the consumer left it.
MOVE_CHECKPOINT = (
    "UPDATE checkpoints SET position = ?, updated_at = ? WHERE name = ? AND position = ?"
)

DELETE_CHECKPOINT = "DELETE FROM checkpoints WHERE name = ?"

PROJECTION_RECORD = "SELECT CAST(data AS BLOB) FROM projection_records WHERE name = ?"

SAVE_PROJECTION_RECORD = (
    "INSERT INTO projection_records (name, data) VALUES (?, CAST(? AS TEXT)) "
    "ON CONFLICT (name) DO UPDATE SET data = excluded.data"
)

DELETE_PROJECTION_RECORD = "DELETE FROM projection_records WHERE name = ?"

PROJECTION_RECORDS = "SELECT name, CAST(data AS BLOB) FROM projection_records ORDER BY name"

SAVEPOINT = "SAVEPOINT eventkeep_append"

RELEASE_SAVEPOINT = "RELEASE eventkeep_append"

ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO eventkeep_append"

INSERT_SAVEPOINT = "SAVEPOINT eventkeep_insert"

RELEASE_INSERT_SAVEPOINT = "RELEASE eventkeep_insert"

ROLLBACK_TO_INSERT_SAVEPOINT = "ROLLBACK TO eventkeep_insert"

# -- moving history (export, import, copy: eventkeep.moving) ----------------------------------

# Stored events as they are, hashes included (ChainRow's columns), in log order. ``{where}``:
# WHERE_PREFIX or nothing.
EXPORT_ROWS = (
    "SELECT stream_id, version, position, event_id, type, schema_version, recorded_at, "
    "CAST(data AS BLOB), CAST(metadata AS BLOB), hash, tags FROM events "
    "WHERE position > ?{where} ORDER BY position LIMIT ?"
)

# ``{marks}`` is filled with one ``?`` per event id.
STORED_EVENTS = (
    "SELECT stream_id, version, position, event_id, type, schema_version, recorded_at, "
    "CAST(data AS BLOB), CAST(metadata AS BLOB), hash, tags FROM events "
    "WHERE event_id IN ({marks})"
)
