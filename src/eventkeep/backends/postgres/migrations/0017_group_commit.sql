-- Group commit: concurrent appends share a WAL flush (docs/postgres.md, "Group commit").
--
-- Until now every append committed synchronously while it held the sequencer's lock, and
-- PostgreSQL releases a transaction's locks only after its commit record is flushed: the lock
-- was held through every fdatasync, so appends flushed one after another. Now, in a session
-- that sets eventkeep.group_commit to on (PostgresStore(group_commit=True), the default), an
-- append that finds the sequencer's lock taken (another append holds it: there is contention)
-- commits with synchronous_commit off once it has the lock: its commit record goes into the
-- WAL buffers under the lock and the lock goes at once. Its statement says so (the append
-- statements return current_setting('synchronous_commit') = 'off'), and the client then calls
-- eventkeep_flush_wal() before it reports the append stored: a second, synchronous commit
-- whose flush covers the first, and which concurrent writers' flushes share (PostgreSQL's
-- XLogFlush writes everything inserted so far for every waiter at once). An append that gets
-- the lock at once commits synchronously, as before: a lone writer pays nothing for group
-- commit (no second commit, no second round trip).
--
-- Positions still follow commit order (the lock is held to the commit record), so a snapshot
-- that shows position N shows every position below it. What changes is that a reader could
-- see an event whose commit is not flushed yet, which a server crash would take back (and
-- give its position to another event): readers of the primary call eventkeep_flush_wal()
-- before they return an event they have not yet seen flushed (the store does it; see
-- eventkeep.backends.postgres.durable).
--
-- Transactions that take the lock with eventkeep_sequencer_lock() first (store transactions,
-- the locked and checked append paths, imports, lifecycle operations) keep committing
-- synchronously: they already hold the lock when they number, so they get it "at once". They
-- hold it across client round trips anyway, and their commit stays the one thing that says
-- they are stored. A session without the setting commits every append synchronously.

-- Flush the WAL up to `upto` (NULL: everything inserted so far) unless it already is: a
-- transaction that writes one WAL record (an empty logical decoding message, which assigns
-- this transaction an id) commits synchronously, and a synchronous commit returns once the
-- WAL is flushed past its own commit record, so past everything inserted before it. Returns
-- whether it had to write.
CREATE OR REPLACE FUNCTION eventkeep_flush_wal(upto pg_lsn DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF pg_current_wal_flush_lsn() >= coalesce(upto, pg_current_wal_insert_lsn()) THEN
        RETURN false;
    END IF;
    IF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;
    PERFORM pg_logical_emit_message(true, 'eventkeep', '');
    RETURN true;
END
$$;

-- The numbering functions of 0014 with the commit mode decided as above: asynchronous in a
-- group-commit session when another transaction held the lock, otherwise synchronous even
-- where the session is not.
CREATE OR REPLACE FUNCTION eventkeep_append_position() RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    last_event bigint;
    last_removed bigint;
BEGIN
    lock_key := (x'454b5351'::bigint << 32)
        | quote_ident(current_schema())::regnamespace::oid::bigint;
    IF pg_try_advisory_xact_lock(lock_key) THEN
        IF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    ELSE
        PERFORM pg_advisory_xact_lock(lock_key);
        IF current_setting('eventkeep.group_commit', true) = 'on' THEN
            PERFORM set_config('synchronous_commit', 'off', true);
        ELSIF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    END IF;
    SELECT (SELECT e.position FROM events AS e WHERE e.position IS NOT NULL
            ORDER BY e.position DESC LIMIT 1),
           (SELECT max(r.last_position) FROM eventkeep_removed AS r)
      INTO last_event, last_removed;
    RETURN greatest(coalesce(last_event, 0), coalesce(last_removed, 0));
END
$$;

CREATE OR REPLACE FUNCTION eventkeep_append_position_not_before(recorded_at timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    last_event bigint;
    last_recorded timestamptz;
    last_removed bigint;
BEGIN
    lock_key := (x'454b5351'::bigint << 32)
        | quote_ident(current_schema())::regnamespace::oid::bigint;
    IF pg_try_advisory_xact_lock(lock_key) THEN
        IF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    ELSE
        PERFORM pg_advisory_xact_lock(lock_key);
        IF current_setting('eventkeep.group_commit', true) = 'on' THEN
            PERFORM set_config('synchronous_commit', 'off', true);
        ELSIF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    END IF;
    SELECT e.position, e.recorded_at INTO last_event, last_recorded FROM events AS e
        WHERE e.position IS NOT NULL ORDER BY e.position DESC LIMIT 1;
    IF last_recorded > eventkeep_append_position_not_before.recorded_at THEN
        RAISE EXCEPTION 'eventkeep: the log''s last event was recorded after %', recorded_at
            USING ERRCODE = 'EKC02';
    END IF;
    SELECT max(r.last_position) INTO last_removed FROM eventkeep_removed AS r;
    RETURN greatest(coalesce(last_event, 0), coalesce(last_removed, 0));
END
$$;

CREATE OR REPLACE FUNCTION eventkeep_append_position_at(expected bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    head bigint;
    last_removed bigint;
BEGIN
    lock_key := (x'454b5351'::bigint << 32)
        | quote_ident(current_schema())::regnamespace::oid::bigint;
    IF pg_try_advisory_xact_lock(lock_key) THEN
        IF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    ELSE
        PERFORM pg_advisory_xact_lock(lock_key);
        IF current_setting('eventkeep.group_commit', true) = 'on' THEN
            PERFORM set_config('synchronous_commit', 'off', true);
        ELSIF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    END IF;
    SELECT e.position INTO head FROM events AS e
        WHERE e.position IS NOT NULL ORDER BY e.position DESC LIMIT 1;
    SELECT max(r.last_position) INTO last_removed FROM eventkeep_removed AS r;
    head := greatest(coalesce(head, 0), coalesce(last_removed, 0));
    IF head <> expected THEN
        RAISE EXCEPTION 'eventkeep: the log moved from position % to % since the append '
            'condition was checked', expected, head USING ERRCODE = 'EKC01';
    END IF;
    RETURN head;
END
$$;

CREATE OR REPLACE FUNCTION eventkeep_append_position_unmatched(
    seen_head bigint, first_match bigint, recorded_at timestamptz
) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    head bigint;
    last_recorded timestamptz;
    last_removed bigint;
BEGIN
    IF first_match IS NOT NULL THEN
        RAISE EXCEPTION 'eventkeep: an event matching the append condition is at position %',
            first_match USING ERRCODE = 'EKC03';
    END IF;
    lock_key := (x'454b5351'::bigint << 32)
        | quote_ident(current_schema())::regnamespace::oid::bigint;
    IF pg_try_advisory_xact_lock(lock_key) THEN
        IF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    ELSE
        PERFORM pg_advisory_xact_lock(lock_key);
        IF current_setting('eventkeep.group_commit', true) = 'on' THEN
            PERFORM set_config('synchronous_commit', 'off', true);
        ELSIF current_setting('synchronous_commit') = 'off' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    END IF;
    SELECT e.position, e.recorded_at INTO head, last_recorded FROM events AS e
        WHERE e.position IS NOT NULL ORDER BY e.position DESC LIMIT 1;
    SELECT max(r.last_position) INTO last_removed FROM eventkeep_removed AS r;
    head := greatest(coalesce(head, 0), coalesce(last_removed, 0));
    IF head <> seen_head THEN
        RAISE EXCEPTION 'eventkeep: the log moved from position % to % since the append '
            'condition was checked', seen_head, head USING ERRCODE = 'EKC01';
    END IF;
    IF last_recorded > eventkeep_append_position_unmatched.recorded_at THEN
        RAISE EXCEPTION 'eventkeep: the log''s last event was recorded after %', recorded_at
            USING ERRCODE = 'EKC02';
    END IF;
    RETURN head;
END
$$;
