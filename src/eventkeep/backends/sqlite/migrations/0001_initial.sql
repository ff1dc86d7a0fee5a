-- eventkeep SQLite schema, version 1. Never edit a released migration: add a new file.

CREATE TABLE events (
    position       INTEGER PRIMARY KEY,          -- the global log; commit order (one writer at a time)
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,             -- 1-based within the stream
    event_id       BLOB    NOT NULL UNIQUE,      -- 16-byte UUID: the idempotency key
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,             -- JSON, queryable with json_extract()
    metadata       TEXT    NOT NULL,             -- JSON object
    recorded_at    INTEGER NOT NULL,             -- microseconds since the Unix epoch, UTC
    hash           BLOB    NOT NULL,             -- sha256 chained to the stream's previous event
    UNIQUE (stream_id, version)
);

CREATE INDEX events_by_type ON events (type, position);

-- One row per stream: its head. Derived from events (verify cross-checks it), kept for fast
-- expected-version checks, stream listings and counts.
CREATE TABLE streams (
    stream_id     TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    last_hash     BLOB    NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored events are append-only; UPDATE is refused');
END;

CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored events are append-only; DELETE is refused');
END;
