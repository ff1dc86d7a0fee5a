"""Every SQL statement the PostgreSQL backend runs, one named constant each.

Statements name tables without a schema: the store's connections run with ``search_path`` set
to the store's schema (see :mod:`eventkeep.backends.postgres.connection`). ``%s`` are psycopg
parameters; ``{where}`` and ``{schema}`` are filled in by the store from fixed fragments below.
"""

from __future__ import annotations

# -- sessions and migrations ------------------------------------------------------------------

# ``{schema}`` is the schema's quoted identifier (a validated name, so quoting is exact).
CONFIGURE_SESSION = (
    "SET search_path TO {schema}; "
    "SET default_transaction_isolation TO 'read committed'; "
    "SET lock_timeout TO {lock_timeout_ms}; "
    # A session that sits idle inside a transaction (its client frozen, stopped or stuck) is
    # ended by the server, which releases the sequencer and row locks it holds.
    "SET idle_in_transaction_session_timeout TO {idle_ms}; "
    # Read by the numbering functions (migration 0017): appends outside a store transaction
    # commit asynchronously and the client flushes after them (FLUSH_WAL), sharing the flush.
    "SET eventkeep.group_commit TO {group_commit}"
)

MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(1163547985, hashtext(%s))"

CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {schema}"

USE_SCHEMA = "SET LOCAL search_path TO {schema}"

CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS eventkeep_migrations ("
    "version integer PRIMARY KEY, name text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)

MIGRATIONS_TABLE_EXISTS = "SELECT to_regclass(%s) IS NOT NULL"

SCHEMA_VERSION_OF = "SELECT coalesce(max(version), 0) FROM {schema}.eventkeep_migrations"

SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM eventkeep_migrations"

RECORD_MIGRATION = "INSERT INTO eventkeep_migrations (version, name) VALUES (%s, %s)"

# -- writing ------------------------------------------------------------------------------------

ROLLBACK = "ROLLBACK"

BEGIN = "BEGIN"

COMMIT = "COMMIT"

# The server's clock (the store's clock): never behind the last numbered event.
_CLOCK = (
    "(SELECT greatest(clock_timestamp(), (SELECT recorded_at FROM events "
    "WHERE position IS NOT NULL ORDER BY position DESC LIMIT 1)) AS now) AS c"
)

# A stream's head, where ``{id}`` is its id: its last event, backwards along the primary key
# (stream_id, version), or the last removed one (migration 0009) if higher, timed at its
# operation. No head is stored (migration 0018): the append's unique check reads the same page.
HEAD_OF = (
    "SELECT x.stream_id, x.version, x.hash, x.recorded_at FROM ("
    "(SELECT stream_id, version, hash, recorded_at FROM events WHERE stream_id = {id} "
    "ORDER BY version DESC LIMIT 1) UNION ALL "
    "(SELECT r.stream_id, r.last_version, r.last_hash, "
    "timestamptz 'epoch' + o.recorded_at * interval '1 microsecond' "
    "FROM eventkeep_removed AS r JOIN eventkeep_operations AS o USING (operation_id) "
    "WHERE r.stream_id = {id} ORDER BY r.last_version DESC LIMIT 1)"
    ") AS x ORDER BY x.version DESC LIMIT 1"
)

# An append's first round trip (no transaction, no lock): the heads of the streams written and
# the clock. A stream without a head is new (a row of NULLs here).
HEADS = (
    "SELECT h.stream_id, h.version, h.hash, h.recorded_at, c.now FROM "
    f"{_CLOCK} "
    "LEFT JOIN LATERAL (SELECT h.* FROM unnest(%s::text[]) AS q (id) CROSS JOIN LATERAL "
    f"({HEAD_OF.format(id='q.id')}) AS h) AS h ON true"
)

# The same for the common append to one stream (scalar parameters are cheaper than arrays).
HEAD = (
    "SELECT h.stream_id, h.version, h.hash, h.recorded_at, c.now FROM "
    f"{_CLOCK} "
    "LEFT JOIN LATERAL (SELECT h.* FROM (SELECT %s::text AS id) AS q CROSS JOIN LATERAL "
    f"({HEAD_OF.format(id='q.id')}) AS h) AS h ON true"
)


def with_columns(statement: str, select: str) -> str:
    """HEAD or HEADS with the columns of ``select`` (one row) added after the clock, from the
    same snapshot; its parameters follow the statement's."""
    return (
        statement.replace(" c.now FROM ", " c.now, m.* FROM ", 1) + f" CROSS JOIN ({select}) AS m"
    )


# Asked only when an append does not fit the stream (to tell a retry from a conflict) or hit the
# event id index: appends that go through pay nothing for idempotency but the unique index.
STORED_IDENTITIES = (
    "SELECT e.event_id, e.stream_id, e.version, e.position, e.type, e.data_bytes "
    "FROM unnest(%s::uuid[]) AS i (id), "
    "LATERAL (SELECT * FROM events WHERE event_id = i.id LIMIT 1) AS e"  # a probe per id
)

_EVENT_COLUMNS = (
    "stream_id, version, event_id, type, schema_version, recorded_at, data_bytes, "
    "metadata_bytes, hash, tags"
)

# An append of one event, in one statement and transaction: the position comes from
# eventkeep_append_position(streams, first versions) (migrations 0004, 0018), which takes the
# sequencer's lock (held to the commit), refuses a version a logged operation removed (SQLSTATE
# EKC04) and returns the head position read after the lock was granted. Its parameters come
# first: the appended streams and the first version written to each (one stream here, many in
# APPEND_EVENTS). The statement returns the event's position and notifies the store's channel
# (wait_for_events). The variants below replace _HEAD_POSITION with another numbering function
# whose own parameters come before the streams.
_HEAD_POSITION = "(SELECT eventkeep_append_position("
_ONE_STREAM = "ARRAY[%s::text], ARRAY[%s::bigint]))"
_STREAMS = "%b::text[], %b::bigint[]))"

VERSION_REMOVED = "EKC04"

# The numbering functions of a one-round-trip append refuse a first version that does not follow
# a stored or removed version of its stream (migration 0019): the head it was planned on was
# known wrongly, ahead of the stream.
VERSION_GAP = "EKC05"

# The third column: whether the append committed asynchronously (group commit, migration
# 0017: it found the sequencer's lock taken), so that its client must flush (FLUSH_WAL) before
# it reports the append stored. Evaluated after the numbering function, which set it.
_NOTIFY = (
    "pg_notify('eventkeep_' || current_schema(), max(position)::text), "
    "current_setting('synchronous_commit') = 'off'"
)

APPEND_EVENT = (
    f"WITH inserted AS (INSERT INTO events (position, {_EVENT_COLUMNS}) "
    f"SELECT {_HEAD_POSITION}{_ONE_STREAM} + 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s "
    "RETURNING position) "
    f"SELECT min(position), {_NOTIFY} FROM inserted"
)

# APPEND_EVENT for an event with tags: their index rows too, read from the event's own tags
# column (a JSON array of strings) as inserted. Not from a text[] parameter: psycopg adapts a
# list in Python, about 70 us of client CPU for two tags, against a few us of the server's for
# the JSON.
APPEND_TAGGED_EVENT = APPEND_EVENT.replace(
    "RETURNING position) ", "RETURNING position, type, tags) "
).replace(
    " SELECT min(position),",
    ", tagged AS (INSERT INTO event_tags (tag, position, type) "
    "SELECT g.tag, i.position, i.type FROM inserted AS i, "
    "json_array_elements_text(i.tags::json) AS g (tag)) "
    "SELECT min(position),",
)

# An append of several events (one array per column, the timestamp shared), in one statement,
# numbered in order; returns the first position. ``%b``: the arrays travel in binary, which
# beat both text arrays and binary COPY (one more round trip) at 20, 100 and 1,000 events.
APPEND_EVENTS = (
    f"WITH inserted AS (INSERT INTO events (position, {_EVENT_COLUMNS}) "
    f"SELECT {_HEAD_POSITION}{_STREAMS} + n, s, v, e, t, sv, %b::timestamptz, d, m, h, g "
    "FROM unnest("
    "%b::text[], %b::bigint[], %b::uuid[], %b::text[], %b::int[], %b::bytea[], %b::bytea[], "
    "%b::bytea[], %b::text[]) WITH ORDINALITY AS u (s, v, e, t, sv, d, m, h, g, n) "
    "RETURNING position) "
    f"SELECT min(position), {_NOTIFY} FROM inserted"
)

# APPEND_EVENTS for events with tags, which also writes their index rows: (offset of the event
# in the append, 1-based; tag), numbered from the append's first position. (A data-modifying
# CTE always runs, referenced or not.)
APPEND_TAGGED_EVENTS = APPEND_EVENTS.replace(
    " SELECT min(position),",
    ", tagged AS (INSERT INTO event_tags (tag, position, type) "
    "SELECT x.g, f.first + x.i - 1, x.t FROM unnest(%b::int[], %b::text[], %b::text[]) "
    "AS x (i, g, t), "
    "(SELECT min(position) AS first FROM inserted) AS f) "
    "SELECT min(position),",
)

# The same statements for a conditional append checked before, without a lock, at head
# position N: eventkeep_append_position_at(N, ...) (migrations 0007, 0018) takes the sequencer's
# lock and raises SQLSTATE EKC01 unless the head is still N. Its parameter comes first.
_HEAD_POSITION_AT = "(SELECT eventkeep_append_position_at(%s::bigint, "

HEAD_MOVED = "EKC01"


# The same statements for an append sent without reading first (the heads known from earlier
# appends, the time chosen by the client): eventkeep_append_position_not_before(T, ...)
# (migrations 0012, 0018) takes the sequencer's lock and raises SQLSTATE EKC02 if the log's last
# event was recorded after T. Its parameter comes first.
_HEAD_POSITION_NOT_BEFORE = "(SELECT eventkeep_append_position_not_before(%s::timestamptz, "

CLOCK_BEHIND = "EKC02"


def not_before(statement: str) -> str:
    """``statement`` (APPEND_EVENT, APPEND_EVENTS, and their tagged forms) for an append sent
    without reading first: its first parameter is the events' ``recorded_at``."""
    return statement.replace(_HEAD_POSITION, _HEAD_POSITION_NOT_BEFORE, 1)


# The same statements for a conditional append in one round trip (the heads known from earlier
# appends, the time chosen by the client, the condition checked by the statement itself):
# eventkeep_append_position_unmatched(seen head, first match, T)
# (migrations/0013_conditional_append_in_one_statement.sql) raises SQLSTATE EKC03 if the first
# match, read from the statement's snapshot, is not NULL; then takes the sequencer's lock and
# raises EKC01 unless the head position is still the one that snapshot saw (and EKC02 as
# above). The match's parameters come first, then T.
_HEAD_POSITION_UNMATCHED = (
    "(SELECT eventkeep_append_position_unmatched(" + "{head}" + ", ({match}), %s::timestamptz, "
)

# eventkeep_head_position()'s body (migration 0009), written out: that function (SET
# search_path) is not inlined and plans its body on every call, about 0.2 ms.
HEAD_POSITION_INLINE = (
    "greatest((SELECT coalesce(max(position), 0) FROM events), "
    "(SELECT coalesce(max(last_position), 0) FROM eventkeep_removed))"
)

CONDITION_MATCHED = "EKC03"


def unmatched(statement: str, match: str) -> str:
    """``statement`` (APPEND_EVENT, APPEND_EVENTS, and their tagged forms) for a conditional
    append checked by the statement: ``match`` (``dcb.first_match``) its first parameters, then
    the events' ``recorded_at``."""
    position = _HEAD_POSITION_UNMATCHED.replace("{head}", HEAD_POSITION_INLINE).replace(
        "{match}", match
    )
    return statement.replace(_HEAD_POSITION, position, 1)


def conditional(statement: str) -> str:
    """``statement`` (APPEND_EVENT, APPEND_EVENTS, APPEND_TAGGED_EVENTS) for a conditional
    append checked at a head position (its first parameter)."""
    return statement.replace(_HEAD_POSITION, _HEAD_POSITION_AT, 1)


# Group commit (migration 0017_group_commit.sql): returns once the WAL is flushed past
# everything inserted before it (a synchronous commit of its own, shared with concurrent
# writers' flushes), at once if it already is. Sent after an append (plans.Flush).
FLUSH_WAL = "SELECT eventkeep_flush_wal()"

# The same for a reader that is about to return events it has not seen flushed: the head
# position comes from this statement's snapshot, taken before the function reads the WAL
# insert position, so every position up to it is flushed when this returns.
FLUSH_WAL_HEAD = (
    "SELECT eventkeep_flush_wal(), greatest((SELECT coalesce(max(position), 0) FROM events), "
    "(SELECT coalesce(max(last_position), 0) FROM eventkeep_removed))"
)

# The same up to a WAL position read earlier (a replica store's read served by the primary).
FLUSH_WAL_TO = "SELECT eventkeep_flush_wal(%s::pg_lsn)"

# -- reading ------------------------------------------------------------------------------------

# Columns in the order RecordedEvent takes them (codec last, added in Python).
_RECORD = (
    "stream_id, version, position, event_id, type, schema_version, data_bytes, "
    "metadata_bytes, recorded_at, tags"
)

RECORD_COLUMNS = _RECORD
"""The columns of a read (for :mod:`eventkeep.backends.postgres.dcb`)."""

# A stream read that returns nothing when the stream has a tombstone (``live`` reads: one
# statement for the common case; see ``EventStore._paged_stream``).
_NOT_DELETED = (
    " AND NOT EXISTS (SELECT 1 FROM eventkeep_stream_meta "
    "WHERE stream_id = %s AND deleted_version IS NOT NULL)"
)


def read_stream(*, backwards: bool, live: bool) -> str:
    """The statement of a page of a stream: parameters stream id, lowest and highest version,
    (the stream id again when ``live``,) limit. Its rows are ``RECORD_COLUMNS`` and the event's
    hash: a page that ends at the stream's last event tells the store its head (``plans.Known``)."""
    return _READ_STREAM[backwards, live]


_READ_STREAM = {
    (backwards, live): (
        f"SELECT {_RECORD}, hash FROM events WHERE stream_id = %s AND version >= %s "
        f"AND version <= %s{_NOT_DELETED if live else ''} "
        f"ORDER BY version{' DESC' if backwards else ''} LIMIT %s"
    )
    for backwards in (False, True)
    for live in (False, True)
}

# ``{where}`` adds the optional type and stream-prefix filters below.
READ_ALL = f"SELECT {_RECORD} FROM events WHERE position > %s{{where}} ORDER BY position LIMIT %s"

WHERE_TYPES = " AND type = ANY (%s::text[])"

# A prefix is the range [prefix, successor) of stream ids in "C" collation (code point order).
WHERE_PREFIX_RANGE = " AND stream_id >= %s AND stream_id < %s"

WHERE_PREFIX_OPEN = " AND stream_id >= %s AND starts_with(stream_id, %s)"

# For a prefix holding a '-': the category index narrows the scan, in position order.
WHERE_CATEGORY = " AND split_part(stream_id, '-', 1) = %s"

# A stream's version and its last event's position, where ``{id}`` is its id: its last event, or
# the last removed one if higher (as HEAD reads it).
_VERSION_OF = (
    "SELECT x.version, x.position FROM ("
    "(SELECT version, position FROM events WHERE stream_id = {id} "
    "ORDER BY version DESC LIMIT 1) UNION ALL "
    "(SELECT last_version, last_position FROM eventkeep_removed WHERE stream_id = {id} "
    "ORDER BY last_version DESC LIMIT 1)"
    ") AS x ORDER BY x.version DESC LIMIT 1"
)

# 0 for a stream that does not exist.
STREAM_VERSION = (
    "SELECT coalesce((SELECT h.version FROM "
    f"({_VERSION_OF.format(id='q.id')}) AS h), 0) FROM (SELECT %s::text AS id) AS q"
)

# Every stream's id: the streams whose version 1 is stored (the partial index
# events_stream_starts, migration 0018) and those whose version 1 a logged operation removed.
# The two never share a stream (UNION ALL: no set to deduplicate, so a page of them is read in
# order from the two indexes and stops at its limit).
STREAM_IDS = (
    "SELECT stream_id FROM events WHERE version = 1 "
    "UNION ALL SELECT stream_id FROM eventkeep_removed WHERE first_version = 1"
)

# A page of streams, each with its version and its last event's position. A stream whose every
# event was removed is listed too, at its last removed event's position (as SQLite's head row
# and the memory store say). ``{where}``: WHERE_PREFIX_RANGE or WHERE_PREFIX_OPEN, in both
# branches (their parameters twice), or nothing; the limit is given three times (each branch
# reads its index in order up to it: one sort of both made the planner sort every match).
LIST_STREAMS = (
    "SELECT s.stream_id, h.version, h.position FROM ("
    "(SELECT stream_id FROM events WHERE version = 1{where} ORDER BY stream_id LIMIT %s) "
    "UNION ALL (SELECT stream_id FROM eventkeep_removed WHERE first_version = 1{where} "
    "ORDER BY stream_id LIMIT %s) ORDER BY stream_id LIMIT %s) AS s CROSS JOIN LATERAL "
    f"({_VERSION_OF.format(id='s.stream_id')}) AS h ORDER BY s.stream_id"
)

# The log's head: its last event, or the last removed one if higher (migration 0009), written
# out: calling eventkeep_head_position() took 236 µs a read, this 62 µs (every store.read of
# a query reads it first).
HEAD_POSITION = f"SELECT {HEAD_POSITION_INLINE}"

COUNT_EVENTS = "SELECT count(*) FROM events"

COUNT_STREAMS = f"SELECT count(*) FROM ({STREAM_IDS}) AS s"

COUNT_BY_TYPE = "SELECT type, count(*) FROM events GROUP BY type ORDER BY type"

CHAIN_ROWS = (
    "SELECT stream_id, version, position, event_id, type, schema_version, recorded_at, "
    "data_bytes, metadata_bytes, hash, tags FROM events ORDER BY stream_id, version"
)

# (event tags not in event_tags, event_tags entries not among the event tags): both 0 when the
# index holds exactly what the (hashed) tags of the events say.
_EVENT_TAGS = (
    'SELECT j.tag COLLATE "C", e.position, e.type FROM events AS e, '
    "jsonb_array_elements_text(e.tags::jsonb) AS j (tag) WHERE e.tags IS NOT NULL"
)
TAG_INDEX_DIFFERENCES = (
    f"SELECT (SELECT count(*) FROM ({_EVENT_TAGS} EXCEPT "
    "SELECT tag, position, type FROM event_tags) AS a), "
    "(SELECT count(*) FROM (SELECT tag, position, type FROM event_tags EXCEPT "
    f"{_EVENT_TAGS}) AS b)"
)

ANCHOR_ROWS = (
    "SELECT position, stream_id, version, hash FROM events WHERE position > %s "
    "AND position <= %s ORDER BY position"
)

ANCHOR_HEADS = (
    "SELECT DISTINCT ON (stream_id) stream_id, version, position, hash FROM events "
    "WHERE position <= %s ORDER BY stream_id, version DESC"
)

# The schema amcheck is installed in, if it is installed in this database.
AMCHECK_SCHEMA = (
    "SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'amcheck'"
)

# Every valid B-tree index of the store's schema (the tables' and eventkeep's own).
STORE_BTREE_INDEXES = (
    "SELECT c.oid, c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid "
    "JOIN pg_am AS a ON a.oid = c.relam JOIN pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND a.amname = 'btree' AND i.indisvalid "
    "ORDER BY c.relname"
)

# ``{schema}``: amcheck's schema, quoted. heapallindexed: every table row is in the index too.
BT_INDEX_CHECK = "SELECT {schema}.bt_index_check(%s::oid::regclass, true)"

BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

# -- snapshots ------------------------------------------------------------------------------

SAVE_SNAPSHOT = (
    "INSERT INTO snapshots (stream_id, version, type, schema_version, data, recorded_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (stream_id, version) DO UPDATE SET "
    "type = excluded.type, schema_version = excluded.schema_version, data = excluded.data, "
    "recorded_at = excluded.recorded_at"
)

LOAD_SNAPSHOT = (
    "SELECT stream_id, version, type, schema_version, data, recorded_at FROM snapshots "
    "WHERE stream_id = %s AND version <= %s ORDER BY version DESC LIMIT 1"
)

DELETE_SNAPSHOTS = "DELETE FROM snapshots WHERE true{where}"

# -- notifications --------------------------------------------------------------------------

# ``{channel}`` is a quoted identifier: eventkeep_<schema>, as the sequencer notifies it.
LISTEN = "LISTEN {channel}"

# -- store transactions (eventkeep.projections) -----------------------------------------------

# A store transaction that appends takes the sequencer's lock first (before any stream head:
# two such transactions never hold heads while waiting for each other's sequencer lock) and
# keeps it to its commit, numbering its own events as it appends them.
SEQUENCER_LOCK = "SELECT eventkeep_sequencer_lock()"

CHECKPOINT = "SELECT position FROM checkpoints WHERE name = %s"

CHECKPOINTS = "SELECT name, position FROM checkpoints ORDER BY name"

INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (name, position, updated_at) VALUES (%s, %s, clock_timestamp()) "
    "ON CONFLICT (name) DO NOTHING"
)

# Compare-and-set: a concurrent mover makes this UPDATE wait, then re-check the row it committed
# (READ COMMITTED), so it changes nothing unless the checkpoint is still where it was expected.
MOVE_CHECKPOINT = (
    "UPDATE checkpoints SET position = %s, updated_at = clock_timestamp() "
    "WHERE name = %s AND position = %s"
)

DELETE_CHECKPOINT = "DELETE FROM checkpoints WHERE name = %s"

PROJECTION_RECORD = "SELECT data FROM projection_records WHERE name = %s FOR UPDATE"

# Taken when a record does not exist yet, so that two transactions creating the same projection
# record one after the other (the second then finds and locks the first's row).
RECORD_NAME_LOCK = (
    "SELECT pg_advisory_xact_lock((hashtext(current_schema())::bigint << 32) "
    "| (hashtext(%s)::bigint & 4294967295))"
)

SAVE_PROJECTION_RECORD = (
    "INSERT INTO projection_records (name, data) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET data = excluded.data"
)

DELETE_PROJECTION_RECORD = "DELETE FROM projection_records WHERE name = %s"

PROJECTION_RECORDS = "SELECT name, data FROM projection_records ORDER BY name"

# -- moving history (export, import, copy: eventkeep.moving) ----------------------------------

# Stored events as they are, hashes included (ChainRow's columns), in log order. ``{where}``:
# the prefix fragments above, or nothing.
EXPORT_ROWS = (
    "SELECT stream_id, version, position, event_id, type, schema_version, recorded_at, "
    "data_bytes, metadata_bytes, hash, tags FROM events WHERE position > %s{where} "
    "ORDER BY position LIMIT %s"
)

# An import's first statements, in its transaction after the sequencer's lock: the heads of
# its streams, the events stored under its event ids (a probe per id), and the log's head
# position with its last event's time.
# (The lock taken first: the numbering function then gets it at once, so an import commits
# synchronously even in a group-commit session, migration 0017.)
APPEND_POSITION = "SELECT eventkeep_append_position() FROM eventkeep_sequencer_lock()"

IMPORT_HEADS = (
    "SELECT h.stream_id, h.version, h.hash FROM unnest(%s::text[]) AS q (id) CROSS JOIN LATERAL "
    f"({HEAD_OF.format(id='q.id')}) AS h"
)

STORED_EVENTS = (
    "SELECT e.stream_id, e.version, e.position, e.event_id, e.type, e.schema_version, "
    "e.recorded_at, e.data_bytes, e.metadata_bytes, e.hash, e.tags "
    "FROM unnest(%s::bytea[]) AS i (id), "
    "LATERAL (SELECT * FROM events WHERE event_id = encode(i.id, 'hex')::uuid LIMIT 1) AS e"
)

LAST_EVENT = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"

LAST_EVENT_POSITION = "SELECT coalesce(max(position), 0) FROM events"

COPY_EVENTS = (
    "COPY events (position, stream_id, version, event_id, type, schema_version, recorded_at, "
    "data_bytes, metadata_bytes, hash, tags) FROM STDIN (FORMAT BINARY)"
)

# Binary COPY sends no type names: a uuid is its 16 bytes, sent as bytea, and a timestamptz is
# microseconds since 2000-01-01, sent as int8 (no UUID or datetime object per row).
COPY_EVENT_TYPES = (
    "int8",
    "text",
    "int8",
    "bytea",
    "text",
    "int4",
    "int8",
    "bytea",
    "bytea",
    "bytea",
    "text",
)

COPY_TAGS = "COPY event_tags (tag, position, type) FROM STDIN (FORMAT BINARY)"

COPY_TAG_TYPES = ("text", "int8", "text")

NOTIFY_HEAD = "SELECT pg_notify('eventkeep_' || current_schema(), %s::text)"
