-- Checkpoints and projection records (status and leases) for eventkeep.projections.

-- One row per consumer: the position up to which it has processed the log. Moved only by a
-- compare-and-set in the transaction that applies the consumer's effects (exactly-once).
CREATE TABLE checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL        -- microseconds since the Unix epoch, UTC
) WITHOUT ROWID;

-- One row per projection: its version, generation, state, last error and lease, as JSON.
CREATE TABLE projection_records (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
) WITHOUT ROWID;
