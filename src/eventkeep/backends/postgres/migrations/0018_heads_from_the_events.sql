-- No stream head is stored any more. A stream's head (its last version, hash and time) is read
-- from its last event, backwards along the events' primary key (stream_id, version), or, for a
-- stream whose last events a logged operation removed, from the removal (eventkeep_removed,
-- whose primary key is (stream_id, last_version)). The `streams` table, a row per stream
-- upserted by every append, is dropped. The streams themselves (list_streams, the count in
-- stats) are the entries of the partial index events_stream_starts (a stream's version 1), with
-- the streams whose version 1 a logged operation removed.
--
-- Why: the head upsert and its row-level check were the largest server-side piece of an append
-- that the hash chain, idempotency and commit order do not need (45 µs of server CPU of a
-- single-event append's 180, benchmarks/pg_costs.py --attribute), and, once a store has more
-- streams than shared_buffers holds head rows, a random page read per append
-- (benchmarks/growth_pages.py: 0.5-1.2 blocks per append at 1M events, none at 10k). The head
-- is on the page of the primary key that the append's unique check reads anyway. The partial
-- index costs an entry per stream, written by the append of its version 1 only.
--
-- What held the heads in step, and what does it now:
-- * optimistic concurrency: the events' primary key refuses a second event at a version, as it
--   always did (the head upsert never decided a conflict);
-- * appends inside a store transaction locked their head rows; they hold the sequencer's lock,
--   taken first, which no other append passes before they commit;
-- * the head trigger (0006) kept a head from naming anything but its stream's last event: with
--   no stored head there is nothing to disagree. A stream's tail deleted behind the triggers is
--   no longer visible to verify through its head, as a tail cut with its head moved back never
--   was: anchors (docs/security.md) find both.
--
-- Building the index reads the events table once, holding off appends meanwhile (seconds per
-- million events). A view or function of yours on `streams` makes this migration fail with
-- PostgreSQL's list of them: drop them, migrate, and read a stream's version as the highest
-- version of its events.
DROP TABLE streams;
DROP FUNCTION eventkeep_check_head();
DROP FUNCTION eventkeep_refuse_head_change();

CREATE INDEX events_stream_starts ON events (stream_id) WHERE version = 1;

-- The numbering functions of an append take its streams and each one's first version written,
-- and refuse (SQLSTATE EKC04, nothing written) a version that a logged operation removed: the
-- primary key held them only while the removed events' head row did (an append expecting a new
-- stream, sent in one round trip to a stream whose every event a hard delete removed, wrote
-- its version 1 again). Checked after the sequencer's lock is granted, so no removal can come
-- between the check and the commit. Imports keep the function without arguments (they read the
-- removals under the lock themselves).
DROP FUNCTION eventkeep_append_position_not_before(timestamptz);
DROP FUNCTION eventkeep_append_position_at(bigint);
DROP FUNCTION eventkeep_append_position_unmatched(bigint, bigint, timestamptz);

CREATE FUNCTION eventkeep_append_position(streams text[], first_versions bigint[])
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    last_event bigint;
    last_removed bigint;
    removed_stream text;
    removed_version bigint;
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
    -- A version a logged operation removed is never given again (migration 0018): with no head
    -- row, the primary key no longer holds it once the event is gone.
    IF streams IS NOT NULL AND last_removed IS NOT NULL THEN
        SELECT x.s, x.v INTO removed_stream, removed_version
          FROM unnest(streams, first_versions) AS x (s, v)
          JOIN eventkeep_removed AS r ON r.stream_id = x.s AND r.last_version >= x.v
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged operation',
                removed_version, removed_stream USING ERRCODE = 'EKC04';
        END IF;
    END IF;
    RETURN greatest(coalesce(last_event, 0), coalesce(last_removed, 0));
END
$$;

CREATE FUNCTION eventkeep_append_position_not_before(
    recorded_at timestamptz, streams text[] DEFAULT NULL, first_versions bigint[] DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    last_event bigint;
    last_recorded timestamptz;
    last_removed bigint;
    removed_stream text;
    removed_version bigint;
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
    -- A version a logged operation removed is never given again (migration 0018): with no head
    -- row, the primary key no longer holds it once the event is gone.
    IF streams IS NOT NULL AND last_removed IS NOT NULL THEN
        SELECT x.s, x.v INTO removed_stream, removed_version
          FROM unnest(streams, first_versions) AS x (s, v)
          JOIN eventkeep_removed AS r ON r.stream_id = x.s AND r.last_version >= x.v
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged operation',
                removed_version, removed_stream USING ERRCODE = 'EKC04';
        END IF;
    END IF;
    RETURN greatest(coalesce(last_event, 0), coalesce(last_removed, 0));
END
$$;

CREATE FUNCTION eventkeep_append_position_at(
    expected bigint, streams text[] DEFAULT NULL, first_versions bigint[] DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    head bigint;
    last_removed bigint;
    removed_stream text;
    removed_version bigint;
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
    -- A version a logged operation removed is never given again (migration 0018): with no head
    -- row, the primary key no longer holds it once the event is gone.
    IF streams IS NOT NULL AND last_removed IS NOT NULL THEN
        SELECT x.s, x.v INTO removed_stream, removed_version
          FROM unnest(streams, first_versions) AS x (s, v)
          JOIN eventkeep_removed AS r ON r.stream_id = x.s AND r.last_version >= x.v
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged operation',
                removed_version, removed_stream USING ERRCODE = 'EKC04';
        END IF;
    END IF;
    RETURN head;
END
$$;

CREATE FUNCTION eventkeep_append_position_unmatched(
    seen_head bigint, first_match bigint, recorded_at timestamptz, streams text[] DEFAULT NULL,
    first_versions bigint[] DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key bigint;
    head bigint;
    last_recorded timestamptz;
    last_removed bigint;
    removed_stream text;
    removed_version bigint;
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
    -- A version a logged operation removed is never given again (migration 0018): with no head
    -- row, the primary key no longer holds it once the event is gone.
    IF streams IS NOT NULL AND last_removed IS NOT NULL THEN
        SELECT x.s, x.v INTO removed_stream, removed_version
          FROM unnest(streams, first_versions) AS x (s, v)
          JOIN eventkeep_removed AS r ON r.stream_id = x.s AND r.last_version >= x.v
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged operation',
                removed_version, removed_stream USING ERRCODE = 'EKC04';
        END IF;
    END IF;
    RETURN head;
END
$$;
