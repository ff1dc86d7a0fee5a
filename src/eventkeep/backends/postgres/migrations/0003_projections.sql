-- Checkpoints and projection records (status and leases) for eventkeep.projections, and the
-- sequencer lock for store transactions that append.

-- One row per consumer: the position up to which it has processed the log. Moved only by a
-- compare-and-set in the transaction that applies the consumer's effects (exactly-once).
CREATE TABLE checkpoints (
    name       text COLLATE "C" PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per projection: its version, generation, state, last error and lease, as JSON bytes.
-- Read with SELECT ... FOR UPDATE inside store transactions, which serializes lease changes.
CREATE TABLE projection_records (
    name text COLLATE "C" PRIMARY KEY,
    data bytea NOT NULL
);

-- The sequencer's lock, taken by a store transaction before its first append writes anything
-- and held until it commits: the transaction then numbers its own events (and whatever else is
-- pending) itself, so its append results carry positions and its events become visible already
-- numbered. The key must stay the one eventkeep_sequence() takes (0001_initial.sql).
CREATE FUNCTION eventkeep_sequencer_lock() RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path FROM CURRENT
AS $$
    SELECT pg_advisory_xact_lock((x'454b5351'::bigint << 32)
        | (SELECT oid FROM pg_namespace WHERE nspname = current_schema())::bigint)
$$;
