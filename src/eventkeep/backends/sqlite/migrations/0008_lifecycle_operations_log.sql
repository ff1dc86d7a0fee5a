-- Stream lifecycle (docs/lifecycle.md): deletion, retention, compaction and archives.
--
-- Every removal of stored events is one row of eventkeep_operations, written by the removal's
-- own transaction, plus one row of eventkeep_removed per stream it took a prefix of. The
-- append-only triggers now let a DELETE of an event through only when an *open* operation
-- covers it (its stream and version) that this connection has just written: its rowid (seq) is
-- the connection's last_insert_rowid() (SQLite has no transaction ids; the removals and deletes
-- that follow insert into no rowid table, so it stays that). eventkeep opens the operation,
-- deletes, and closes it (state 'done') before it commits. Stray UPDATE and DELETE stay refused, and so does any
-- change to the log itself but that one closing.

CREATE TABLE eventkeep_operations (
    seq            INTEGER PRIMARY KEY,  -- the rowid: last_insert_rowid() of the writing connection
    operation_id   TEXT    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL,   -- delete, hard-delete, truncate, retention, archive
    stream_id      TEXT,               -- NULL: the whole log
    state          TEXT    NOT NULL CHECK (state IN ('open', 'done')),
    recorded_at    INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    actor          TEXT    NOT NULL,   -- who
    reason         TEXT    NOT NULL,
    events         INTEGER NOT NULL,   -- how many events it removed
    first_position INTEGER,
    last_position  INTEGER,
    archive_file   TEXT,               -- its name in the store's archive directory
    archive_digest TEXT                -- sha256 (hex) of the archive file's bytes
);

CREATE INDEX eventkeep_operations_open ON eventkeep_operations (state) WHERE state = 'open';

-- What an operation removed of one stream: a prefix, versions first..last, and the hash of the
-- last removed event, from which the rest of the stream's chain verifies.
CREATE TABLE eventkeep_removed (
    operation_id   TEXT    NOT NULL,
    stream_id      TEXT    NOT NULL,
    first_version  INTEGER NOT NULL,
    last_version   INTEGER NOT NULL,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    events         INTEGER NOT NULL,
    last_hash      BLOB    NOT NULL,
    PRIMARY KEY (stream_id, last_version)
) WITHOUT ROWID;

-- The highest position ever removed: new events are numbered above it (positions are never
-- given twice, even when the log's last events were removed).
CREATE INDEX eventkeep_removed_by_position ON eventkeep_removed (last_position);

-- Per-stream lifecycle metadata: retention, and the tombstone of a deleted stream. Settings,
-- not history (the operations log holds the history): it may change.
CREATE TABLE eventkeep_stream_meta (
    stream_id         TEXT PRIMARY KEY,
    max_age           REAL,      -- seconds
    max_count         INTEGER,
    truncate_before   INTEGER,
    deleted_version   INTEGER,   -- the tombstone: the version the stream was deleted at
    deleted_operation TEXT,
    deleted_hard      INTEGER
) WITHOUT ROWID;

-- The log is append-only: an operation may only go from open to done, unchanged otherwise.
CREATE TRIGGER eventkeep_operations_update BEFORE UPDATE ON eventkeep_operations
WHEN NOT (OLD.state = 'open' AND NEW.state = 'done'
    AND NEW.seq IS OLD.seq AND NEW.operation_id IS OLD.operation_id AND NEW.kind IS OLD.kind
    AND NEW.stream_id IS OLD.stream_id AND NEW.recorded_at IS OLD.recorded_at
    AND NEW.actor IS OLD.actor AND NEW.reason IS OLD.reason AND NEW.events IS OLD.events
    AND NEW.first_position IS OLD.first_position AND NEW.last_position IS OLD.last_position
    AND NEW.archive_file IS OLD.archive_file AND NEW.archive_digest IS OLD.archive_digest)
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: the operations log is append-only; an operation may only be closed');
END;

CREATE TRIGGER eventkeep_operations_delete BEFORE DELETE ON eventkeep_operations
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: the operations log is append-only; DELETE is refused');
END;

CREATE TRIGGER eventkeep_removed_insert BEFORE INSERT ON eventkeep_removed
WHEN NOT EXISTS (SELECT 1 FROM eventkeep_operations
                 WHERE operation_id = NEW.operation_id AND state = 'open'
                   AND seq = last_insert_rowid())
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: a removal must belong to an open operation');
END;

CREATE TRIGGER eventkeep_removed_update BEFORE UPDATE ON eventkeep_removed
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: the operations log is append-only; UPDATE is refused');
END;

CREATE TRIGGER eventkeep_removed_delete BEFORE DELETE ON eventkeep_removed
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: the operations log is append-only; DELETE is refused');
END;

-- A DELETE of an event passes only when an open operation covers it.
DROP TRIGGER events_are_append_only_delete;

CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
WHEN NOT EXISTS (
    SELECT 1 FROM eventkeep_removed AS r JOIN eventkeep_operations AS o
        ON o.operation_id = r.operation_id
    WHERE o.state = 'open' AND o.seq = last_insert_rowid() AND r.stream_id = OLD.stream_id
      AND OLD.version BETWEEN r.first_version AND r.last_version)
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored events are append-only; DELETE is refused');
END;

-- A tag leaves only with its event, removed by an open operation.
DROP TRIGGER event_tags_are_append_only_delete;

CREATE TRIGGER event_tags_are_append_only_delete BEFORE DELETE ON event_tags
WHEN EXISTS (SELECT 1 FROM events WHERE position = OLD.position)
    OR NOT EXISTS (
        SELECT 1 FROM eventkeep_removed AS r JOIN eventkeep_operations AS o
            ON o.operation_id = r.operation_id
        WHERE o.state = 'open' AND o.seq = last_insert_rowid()
          AND OLD.position BETWEEN r.first_position AND r.last_position)
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored tags are append-only; DELETE is refused');
END;

-- A stream whose every event was removed keeps its head, naming the last removed event: a head
-- may name that (as the removal logged it) when no event of the stream is stored. (A copy of a
-- store writes such heads; eventkeep's removal path leaves the head as it was.)
DROP TRIGGER streams_head_matches_insert;

CREATE TRIGGER streams_head_matches_insert BEFORE INSERT ON streams
WHEN NOT EXISTS (
    SELECT 1 FROM (SELECT position, version, hash FROM events WHERE stream_id = NEW.stream_id
                   ORDER BY version DESC LIMIT 1)
    WHERE position = NEW.last_position AND version = NEW.version AND hash = NEW.last_hash)
AND NOT (
    NOT EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id)
    AND EXISTS (SELECT 1 FROM eventkeep_removed WHERE stream_id = NEW.stream_id
                AND last_version = NEW.version AND last_position = NEW.last_position
                AND last_hash = NEW.last_hash))
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: a stream head must name its stream''s last stored event (version, position and hash); this INSERT is refused');
END;
