-- Bulk loading an empty store (eventkeep copy, eventkeep.backends.postgres.bulk): the copy drops
-- the secondary indexes of the events table, writes its batches, then builds them again, as
-- pg_restore does. While that lasts this table holds one row, written in the same transaction
-- that dropped the indexes and deleted in the same one that builds them, so that a store whose
-- indexes are missing is never left unnoticed: opening it refuses (PostgresStore) until the
-- same copy, run again, finishes. The row says what to build again (the statements that made
-- the dropped indexes), where the load stands (its last event's position and time: the copy
-- reads them here, not from the events table, which has no position index meanwhile) and
-- which source it copies. The append-only triggers stay in place throughout.
CREATE TABLE eventkeep_bulk_load (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    source           text        NOT NULL,  -- the source's URL, without its password
    started_at       timestamptz NOT NULL DEFAULT now(),
    rebuild          text[]      NOT NULL,  -- the statements that build the dropped indexes
    last_position    bigint      NOT NULL DEFAULT 0,
    last_recorded_at timestamptz
);
