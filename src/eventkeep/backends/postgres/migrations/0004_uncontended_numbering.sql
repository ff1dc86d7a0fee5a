-- Uncontended appends number their own events: one transaction instead of two.
--
-- A writer's transaction calls this first. If the sequencer's lock is free, it takes it (held
-- to the end of the transaction), numbers whatever other writers left pending, makes sure the
-- transaction commits synchronously (its positions must survive a crash once seen), and
-- returns the head position: the writer then inserts its events already numbered, above it.
-- If another transaction holds the lock, it returns NULL at once, without waiting, and lets
-- this transaction commit without waiting for its WAL flush: the writer inserts its events
-- unnumbered and has them numbered after the commit by eventkeep_positions(), as before.
-- The key must stay the one eventkeep_sequence() takes (0001_initial.sql).
CREATE FUNCTION eventkeep_try_sequence() RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key constant bigint := (x'454b5351'::bigint << 32)
        | (SELECT oid FROM pg_namespace WHERE nspname = current_schema())::bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(lock_key) THEN
        PERFORM set_config('synchronous_commit', 'off', true);
        RETURN NULL;
    END IF;
    IF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;
    -- Statements from here on take snapshots after the lock was granted (READ COMMITTED, which
    -- eventkeep_sequence() insists on when it has rows to number).
    RETURN eventkeep_sequence();
END
$$;
