-- A stream never gets a gap, and the numbering functions' checks are planned once.
--
-- The two numbering functions of appends sent in one round trip (plans._append_known: a plain
-- append, and one with a DCB condition) refuse, with SQLSTATE EKC05 and nothing written, a
-- first version that does not follow a stored version of its stream or the last version a
-- logged operation removed. Those appends are planned on heads the client learned from its own
-- appends and from reads of a stream to its end, not read on the connection that writes. A
-- head learned ahead of its stream (read from a commit that a server crash then lost before
-- its WAL was flushed: group commit's commits are asynchronous until flushed) would otherwise
-- write after a version that does not exist, which the primary key has nothing against. The
-- client then reads the heads and appends as usual. The appends that read the heads first, on
-- the connection that writes, are not checked: those heads are the stored ones.
--
-- Both checks, and 0018's check of removed versions, probe each stream with a statement of
-- scalar parameters, whose generic plan is the primary key's index scan. A statement over
-- unnest(streams, first_versions) gets a plan for a hundred rows: written that way the gap
-- check's anti-join cost about 0.2 ms per append; 0018's join for removed versions cost 15.5
-- µs per single-stream append in a store holding a removal, its probe now 6.1 µs, and the gap
-- probe 8.9 µs (pg_stat_statements, 3,000 appends each).

CREATE OR REPLACE FUNCTION eventkeep_append_position(streams text[], first_versions bigint[])
    RETURNS bigint
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
    -- A version a logged operation removed is never given again (migration 0018): with no head
    -- row, the primary key no longer holds it once the event is gone.
    IF streams IS NOT NULL AND last_removed IS NOT NULL THEN
        FOR i IN 1 .. cardinality(streams) LOOP
            IF EXISTS (SELECT 1 FROM eventkeep_removed AS r
                        WHERE r.stream_id = streams[i] AND r.last_version >= first_versions[i]) THEN
                RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged '
                    'operation', first_versions[i], streams[i] USING ERRCODE = 'EKC04';
            END IF;
        END LOOP;
    END IF;
    RETURN greatest(coalesce(last_event, 0), coalesce(last_removed, 0));
END
$$;

CREATE OR REPLACE FUNCTION eventkeep_append_position_not_before(
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
        FOR i IN 1 .. cardinality(streams) LOOP
            IF EXISTS (SELECT 1 FROM eventkeep_removed AS r
                        WHERE r.stream_id = streams[i] AND r.last_version >= first_versions[i]) THEN
                RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged '
                    'operation', first_versions[i], streams[i] USING ERRCODE = 'EKC04';
            END IF;
        END LOOP;
    END IF;
    -- An append sent in one round trip, planned on heads the client knew rather than read on
    -- this connection, writes each stream's first version right after a stored or removed
    -- version (migration 0019): a head known wrongly, ahead of its stream, leaves no gap.
    IF streams IS NOT NULL THEN
        FOR i IN 1 .. cardinality(streams) LOOP
            CONTINUE WHEN first_versions[i] <= 1;
            CONTINUE WHEN EXISTS (SELECT 1 FROM events AS e
                                   WHERE e.stream_id = streams[i]
                                     AND e.version = first_versions[i] - 1);
            CONTINUE WHEN last_removed IS NOT NULL
                AND EXISTS (SELECT 1 FROM eventkeep_removed AS r
                             WHERE r.stream_id = streams[i]
                               AND r.last_version = first_versions[i] - 1);
            RAISE EXCEPTION 'eventkeep: version % of stream % does not follow a stored version',
                first_versions[i], streams[i] USING ERRCODE = 'EKC05';
        END LOOP;
    END IF;
    RETURN greatest(coalesce(last_event, 0), coalesce(last_removed, 0));
END
$$;

CREATE OR REPLACE FUNCTION eventkeep_append_position_at(
    expected bigint, streams text[] DEFAULT NULL, first_versions bigint[] DEFAULT NULL
) RETURNS bigint
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
    -- A version a logged operation removed is never given again (migration 0018): with no head
    -- row, the primary key no longer holds it once the event is gone.
    IF streams IS NOT NULL AND last_removed IS NOT NULL THEN
        FOR i IN 1 .. cardinality(streams) LOOP
            IF EXISTS (SELECT 1 FROM eventkeep_removed AS r
                        WHERE r.stream_id = streams[i] AND r.last_version >= first_versions[i]) THEN
                RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged '
                    'operation', first_versions[i], streams[i] USING ERRCODE = 'EKC04';
            END IF;
        END LOOP;
    END IF;
    RETURN head;
END
$$;

CREATE OR REPLACE FUNCTION eventkeep_append_position_unmatched(
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
        FOR i IN 1 .. cardinality(streams) LOOP
            IF EXISTS (SELECT 1 FROM eventkeep_removed AS r
                        WHERE r.stream_id = streams[i] AND r.last_version >= first_versions[i]) THEN
                RAISE EXCEPTION 'eventkeep: version % of stream % was removed by a logged '
                    'operation', first_versions[i], streams[i] USING ERRCODE = 'EKC04';
            END IF;
        END LOOP;
    END IF;
    -- An append sent in one round trip, planned on heads the client knew rather than read on
    -- this connection, writes each stream's first version right after a stored or removed
    -- version (migration 0019): a head known wrongly, ahead of its stream, leaves no gap.
    IF streams IS NOT NULL THEN
        FOR i IN 1 .. cardinality(streams) LOOP
            CONTINUE WHEN first_versions[i] <= 1;
            CONTINUE WHEN EXISTS (SELECT 1 FROM events AS e
                                   WHERE e.stream_id = streams[i]
                                     AND e.version = first_versions[i] - 1);
            CONTINUE WHEN last_removed IS NOT NULL
                AND EXISTS (SELECT 1 FROM eventkeep_removed AS r
                             WHERE r.stream_id = streams[i]
                               AND r.last_version = first_versions[i] - 1);
            RAISE EXCEPTION 'eventkeep: version % of stream % does not follow a stored version',
                first_versions[i], streams[i] USING ERRCODE = 'EKC05';
        END LOOP;
    END IF;
    RETURN head;
END
$$;
