-- Stream lifecycle (docs/lifecycle.md): deletion, retention, compaction and archives.
--
-- Every removal of stored events is one row of eventkeep_operations, written by the removal's
-- own transaction (its txid is recorded), plus one row of eventkeep_removed per stream it took
-- a prefix of. The append-only triggers now let a DELETE of an event through only when an
-- operation that is open *and written by the same transaction* covers it (its stream and
-- version); eventkeep opens the operation, deletes, and closes it (state 'done') before it
-- commits. Stray UPDATE, DELETE and TRUNCATE stay refused, and so does any change to the log
-- itself but that one closing.

CREATE TABLE eventkeep_operations (
    operation_id   text COLLATE "C" PRIMARY KEY,
    kind           text    NOT NULL,  -- delete, hard-delete, truncate, retention, archive
    stream_id      text COLLATE "C",  -- NULL: the whole log
    state          text    NOT NULL CHECK (state IN ('open', 'done')),
    recorded_at    bigint  NOT NULL,  -- microseconds since the Unix epoch, UTC
    actor          text    NOT NULL,  -- who
    reason         text    NOT NULL,
    events         bigint  NOT NULL,  -- how many events it removed
    first_position bigint,
    last_position  bigint,
    archive_file   text,              -- its name in the store's archive directory
    archive_digest text,              -- sha256 (hex) of the archive file's bytes
    txid           bigint  NOT NULL DEFAULT txid_current()  -- the transaction that wrote it
);

-- What an operation removed of one stream: a prefix, versions first..last, and the hash of the
-- last removed event, from which the rest of the stream's chain verifies.
CREATE TABLE eventkeep_removed (
    operation_id   text COLLATE "C" NOT NULL,
    stream_id      text COLLATE "C" NOT NULL,
    first_version  bigint NOT NULL,
    last_version   bigint NOT NULL,
    first_position bigint NOT NULL,
    last_position  bigint NOT NULL,
    events         bigint NOT NULL,
    last_hash      bytea  NOT NULL,
    CONSTRAINT eventkeep_removed_pkey PRIMARY KEY (stream_id, last_version)
);

CREATE INDEX eventkeep_removed_by_position ON eventkeep_removed (last_position);

-- Per-stream lifecycle metadata: retention, and the tombstone of a deleted stream. Settings,
-- not history (the operations log holds the history): it may change.
CREATE TABLE eventkeep_stream_meta (
    stream_id         text COLLATE "C" PRIMARY KEY,
    max_age           double precision,  -- seconds
    max_count         bigint,
    truncate_before   bigint,
    deleted_version   bigint,            -- the tombstone: the version the stream was deleted at
    deleted_operation text,
    deleted_hard      boolean
);

-- The log's head: its last event, or the last one a lifecycle operation removed if that is
-- higher. Positions are never given twice, even when the log's last events were removed.
CREATE FUNCTION eventkeep_head_position() RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path FROM CURRENT
AS $$
    SELECT greatest((SELECT coalesce(max(position), 0) FROM events),
                    (SELECT coalesce(max(last_position), 0) FROM eventkeep_removed))
$$;

-- As in 0005, numbering above eventkeep_head_position() (the key stays 0001's).
CREATE OR REPLACE FUNCTION eventkeep_append_position() RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key constant bigint := (x'454b5351'::bigint << 32)
        | (SELECT oid FROM pg_namespace WHERE nspname = current_schema())::bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    IF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;
    -- Each statement from here on takes a new snapshot, after the lock was granted.
    RETURN greatest((SELECT coalesce(max(position), 0) FROM events),
                    (SELECT coalesce(max(last_position), 0) FROM eventkeep_removed));
END
$$;

-- The log is append-only: an operation may only go from open to done, unchanged otherwise.
CREATE FUNCTION eventkeep_check_operation_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.state <> 'open' OR NEW.state <> 'done'
       OR (to_jsonb(NEW) - 'state') IS DISTINCT FROM (to_jsonb(OLD) - 'state') THEN
        RAISE EXCEPTION 'eventkeep: the operations log is append-only; % is refused '
            '(an operation may only be closed)', TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER eventkeep_operations_change BEFORE UPDATE OR DELETE ON eventkeep_operations
    FOR EACH ROW EXECUTE FUNCTION eventkeep_check_operation_change();

CREATE TRIGGER eventkeep_operations_truncate BEFORE TRUNCATE ON eventkeep_operations
    FOR EACH STATEMENT EXECUTE FUNCTION eventkeep_refuse_change();

CREATE FUNCTION eventkeep_check_removal() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM eventkeep_operations
                   WHERE operation_id = NEW.operation_id AND state = 'open'
                     AND txid = txid_current()) THEN
        RAISE EXCEPTION 'eventkeep: a removal must belong to an open operation of its transaction'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER eventkeep_removed_insert BEFORE INSERT ON eventkeep_removed
    FOR EACH ROW EXECUTE FUNCTION eventkeep_check_removal();

CREATE TRIGGER eventkeep_removed_refuse_change BEFORE UPDATE OR DELETE ON eventkeep_removed
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_change();

CREATE TRIGGER eventkeep_removed_refuse_truncate BEFORE TRUNCATE ON eventkeep_removed
    FOR EACH STATEMENT EXECUTE FUNCTION eventkeep_refuse_change();

-- A DELETE of an event passes only when an open operation of this transaction covers it.
CREATE FUNCTION eventkeep_check_event_delete() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM eventkeep_removed AS r JOIN eventkeep_operations AS o
            ON o.operation_id = r.operation_id
        WHERE o.state = 'open' AND o.txid = txid_current() AND r.stream_id = OLD.stream_id
          AND OLD.version BETWEEN r.first_version AND r.last_version) THEN
        RAISE EXCEPTION 'eventkeep: stored events are append-only; DELETE is refused'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END
$$;

DROP TRIGGER events_refuse_delete ON events;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION eventkeep_check_event_delete();

-- A tag leaves only with its event, removed by an open operation of this transaction.
CREATE FUNCTION eventkeep_check_tag_delete() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events WHERE position = OLD.position)
       OR NOT EXISTS (
        SELECT 1 FROM eventkeep_removed AS r JOIN eventkeep_operations AS o
            ON o.operation_id = r.operation_id
        WHERE o.state = 'open' AND o.txid = txid_current()
          AND OLD.position BETWEEN r.first_position AND r.last_position) THEN
        RAISE EXCEPTION 'eventkeep: stored tags are append-only; DELETE is refused'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END
$$;

DROP TRIGGER event_tags_refuse_delete ON event_tags;
CREATE TRIGGER event_tags_refuse_delete BEFORE DELETE ON event_tags
    FOR EACH ROW EXECUTE FUNCTION eventkeep_check_tag_delete();

-- A stream whose every event was removed keeps its head, naming the last removed event: a head
-- may name that (as the removal logged it) when no event of the stream is stored. (A copy of a
-- store writes such heads; eventkeep's removal path leaves the head as it was.)
CREATE OR REPLACE FUNCTION eventkeep_check_head() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    last_version bigint;
    last_hash bytea;
BEGIN
    SELECT e.version, e.hash INTO last_version, last_hash FROM events AS e
     WHERE e.stream_id = NEW.stream_id ORDER BY e.version DESC LIMIT 1;
    IF last_version IS NULL THEN
        SELECT r.last_version, r.last_hash INTO last_version, last_hash FROM eventkeep_removed AS r
         WHERE r.stream_id = NEW.stream_id ORDER BY r.last_version DESC LIMIT 1;
    END IF;
    IF (TG_OP = 'UPDATE' AND NEW.stream_id IS DISTINCT FROM OLD.stream_id)
       OR last_version IS DISTINCT FROM NEW.version
       OR last_hash IS DISTINCT FROM NEW.last_hash THEN
        RAISE EXCEPTION 'eventkeep: a stream head must name its stream''s last stored event '
            '(version and hash); this % is refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END
$$;
