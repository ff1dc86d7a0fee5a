-- Aggregate state snapshots: a cache beside the events, never part of the history.

CREATE TABLE snapshots (
    stream_id      text COLLATE "C" NOT NULL,
    version        bigint      NOT NULL,   -- the stream version the state was taken at
    type           text        NOT NULL,   -- the state's type name
    schema_version integer     NOT NULL,   -- the state's schema version; a mismatch means stale
    data           bytea       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (stream_id, version)
);
