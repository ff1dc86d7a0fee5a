-- Appends number their own events, in one statement and one transaction.
--
-- A writer reads its streams' heads and the clock (no lock), chains the hashes, then sends one
-- INSERT (with the heads' upsert) whose position comes from this function, evaluated once per
-- statement. It takes the sequencer's lock, held to the end of the transaction, and returns
-- the head position read after the lock was granted: the events are numbered above it. The
-- whole statement and its parameters reach the server before it runs, and the commit follows
-- at once, so the lock is never held while the server waits for a client. Appends are numbered
-- in commit order: every snapshot that sees position N sees every position below it.
-- Rows an earlier eventkeep left unnumbered (position NULL: the two-transaction append of
-- schema versions 1-3, when its writer died before numbering them) are numbered first.
-- The key must stay the one eventkeep_sequence() takes (0001_initial.sql).
CREATE FUNCTION eventkeep_append_position() RETURNS bigint
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
    IF EXISTS (SELECT 1 FROM events WHERE position IS NULL) THEN
        RETURN eventkeep_sequence();
    END IF;
    RETURN (SELECT coalesce(max(position), 0) FROM events);
END
$$;
