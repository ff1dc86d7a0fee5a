-- Schema version 5: every stored event has its global position; the machinery of the
-- two-transaction append of schema versions 1-3 (rows written unnumbered, numbered after commit
-- by a sequencer run) is gone. Upgrade every process that writes to the store to an eventkeep
-- that knows schema version 4 or newer before this migration runs.

-- Number, once, whatever such an old writer left unnumbered (it died between its transactions).
SELECT eventkeep_sequence();

-- Appends number their own events: nothing pending to look for any more.
CREATE OR REPLACE FUNCTION eventkeep_append_position() RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key constant bigint := (x'454b5351'::bigint << 32)
        | (SELECT oid FROM pg_namespace WHERE nspname = current_schema())::bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    -- Positions must survive a crash once seen: this transaction commits synchronously even
    -- where the session does not.
    IF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;
    -- Each statement from here on takes a new snapshot, after the lock was granted.
    RETURN (SELECT coalesce(max(position), 0) FROM events);
END
$$;

DROP FUNCTION eventkeep_positions(uuid[]);
DROP FUNCTION eventkeep_sequence(interval);
DROP INDEX events_pending;

-- No UPDATE of a stored event at all now, the position included (before: only the sequencer's
-- one-time numbering). Refused before the row changes.
DROP TRIGGER events_position_once ON events;
DROP TRIGGER events_refuse_update ON events;
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_change();

-- Scans the table once, under an exclusive lock (a migration runs before the store opens).
-- The partial indexes on position keep their (now always true) predicate: rebuilding them on a
-- large log would cost more than it saves, and the queries still state it.
ALTER TABLE events ALTER COLUMN position SET NOT NULL;
