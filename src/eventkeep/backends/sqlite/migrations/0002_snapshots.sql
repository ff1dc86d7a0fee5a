-- Aggregate state snapshots: a cache beside the events, never part of the history.

CREATE TABLE snapshots (
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,   -- the stream version the state was taken at
    type           TEXT    NOT NULL,   -- the state's type name
    schema_version INTEGER NOT NULL,   -- the state's schema version; a mismatch means stale
    data           BLOB    NOT NULL,
    recorded_at    INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
