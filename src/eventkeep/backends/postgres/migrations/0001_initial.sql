-- eventkeep PostgreSQL schema, version 1. Never edit a released migration: add a new file.
-- Runs in one transaction with search_path set to the store's schema; every object lives there.

-- The queryable jsonb copy of the exact JSON bytes eventkeep stores, hashes and reads back.
-- jsonb cannot hold U+0000, so JSON containing the escape \u0000 gets NULL here (the bytes
-- still hold it). Declared IMMUTABLE so it can define generated columns: a database's encoding
-- never changes, which is all convert_from() depends on.
CREATE FUNCTION eventkeep_json(raw bytea) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN position(decode('5c7530303030', 'hex') IN raw) > 0 THEN NULL  -- \u0000
        ELSE convert_from(raw, 'UTF8')::jsonb
    END
$$;

CREATE TABLE events (
    -- Insertion order, from an identity sequence: NOT commit order, never shown to readers.
    id             bigint GENERATED ALWAYS AS IDENTITY,
    -- The global position: NULL until the sequencer numbers the committed row (see below).
    position       bigint,
    stream_id      text COLLATE "C" NOT NULL,
    version        bigint      NOT NULL,                  -- 1-based within the stream
    event_id       uuid        NOT NULL,                  -- the idempotency key
    type           text COLLATE "C" NOT NULL,
    schema_version integer     NOT NULL,
    recorded_at    timestamptz NOT NULL,                  -- the server's clock, microseconds
    data_bytes     bytea       NOT NULL,                  -- exact JSON: hashed and read back
    metadata_bytes bytea       NOT NULL,
    hash           bytea       NOT NULL,                  -- sha256 chained along the stream
    data           jsonb GENERATED ALWAYS AS (eventkeep_json(data_bytes)) STORED,
    metadata       jsonb GENERATED ALWAYS AS (eventkeep_json(metadata_bytes)) STORED,
    CONSTRAINT events_pkey PRIMARY KEY (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- read_all: the global log in position order.
CREATE UNIQUE INDEX events_position ON events (position) WHERE position IS NOT NULL;
-- read_all(types=...)
CREATE INDEX events_by_type ON events (type, position) WHERE position IS NOT NULL;
-- read_all(stream_prefix="category-..."): the category is the stream id up to its first '-'.
CREATE INDEX events_by_category ON events (split_part(stream_id, '-', 1), position)
    WHERE position IS NOT NULL;
-- Committed rows the sequencer has not numbered yet, in insertion order.
CREATE INDEX events_pending ON events (id) WHERE position IS NULL;

-- One row per stream: its head, locked by writers of that stream (and only them).
CREATE TABLE streams (
    stream_id        text COLLATE "C" PRIMARY KEY,
    version          bigint      NOT NULL,
    last_hash        bytea       NOT NULL,
    last_recorded_at timestamptz NOT NULL
) WITH (fillfactor = 80);  -- room for HOT updates of the head

-- Append-only: refuse DELETE, TRUNCATE and every UPDATE except the sequencer's one-time
-- numbering of a row (position from NULL to a value). The UPDATE triggers run AFTER the row
-- change (raising there undoes the statement all the same): a BEFORE UPDATE row trigger would
-- make PostgreSQL recompute the generated jsonb columns of every row the sequencer numbers.
CREATE FUNCTION eventkeep_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'eventkeep: stored events are append-only; % is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_change();

CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION eventkeep_refuse_change();

CREATE TRIGGER events_refuse_update AFTER UPDATE OF
    id, stream_id, version, event_id, type, schema_version, recorded_at, data_bytes,
    metadata_bytes, hash
    ON events FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_change();

CREATE TRIGGER events_position_once AFTER UPDATE OF position ON events
    FOR EACH ROW WHEN (OLD.position IS NOT NULL OR NEW.position IS NULL)
    EXECUTE FUNCTION eventkeep_refuse_change();

-- The sequencer: numbers every committed, unnumbered row, in insertion order, after the
-- highest position already given. Sequencer runs are serialized by a transaction-scoped
-- advisory lock whose key is unique to this schema, and the numbering statements run after the
-- lock is granted, in READ COMMITTED, so each run sees every earlier run committed. Hence every
-- snapshot that sees position N also sees all positions below N: a reader that has read up to
-- P can never later find a new event at or below P. Writers call it right after their own
-- transaction commits (numbering other writers' rows too). Readers call it with a grace period
-- so that they do not compete with writers for rows those are about to number anyway, yet a
-- writer that died between its two transactions never holds anything back for longer.
-- Returns the head position.
CREATE FUNCTION eventkeep_sequence(grace interval DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    lock_key constant bigint := (x'454b5351'::bigint << 32)
        | (SELECT oid FROM pg_namespace WHERE nspname = current_schema())::bigint;
    head bigint;
    numbered bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events WHERE position IS NULL
                   AND (grace IS NULL OR recorded_at < clock_timestamp() - grace)) THEN
        RETURN (SELECT coalesce(max(position), 0) FROM events);
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'eventkeep: the sequencer must run in READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock(lock_key);
    -- Positions must survive a crash once seen, or a reader could skip the events numbered
    -- again after it: this transaction commits synchronously even where the session does not.
    -- (Its flush also makes durable the writes it numbers, which commit without waiting.)
    IF current_setting('synchronous_commit') = 'off' THEN
        PERFORM set_config('synchronous_commit', 'on', true);
    END IF;
    -- Every statement from here on takes a new snapshot, taken after the lock was granted.
    SELECT coalesce(max(position), 0) INTO head FROM events;
    -- Joined by ctid: each pending row is found directly, whatever the planner believes
    -- about how many rows are pending (a join on id can turn quadratic on stale statistics).
    UPDATE events AS e SET position = head + p.n
      FROM (SELECT ctid AS row_id, row_number() OVER (ORDER BY id) AS n
              FROM events WHERE position IS NULL) AS p
     WHERE e.ctid = p.row_id AND e.position IS NULL;
    GET DIAGNOSTICS numbered = ROW_COUNT;
    IF numbered > 0 THEN
        PERFORM pg_notify('eventkeep_' || current_schema(), (head + numbered)::text);
    END IF;
    RETURN head + numbered;
END
$$;

-- A writer's second step: unless another writer's sequencer run has numbered its events already
-- (group sequencing: then no lock is taken and nothing is written), run the sequencer, which
-- numbers them and whatever else is pending; then return their positions.
CREATE FUNCTION eventkeep_positions(ids uuid[])
    RETURNS TABLE (out_event_id uuid, out_position bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
BEGIN
    -- A scalar subquery per id: always one probe of the event id index, whatever the planner
    -- believes about the table's size (a join could become a whole-table scan per append).
    IF EXISTS (SELECT 1 FROM unnest(ids) AS i (id)
                WHERE (SELECT e.position FROM events AS e WHERE e.event_id = i.id) IS NULL) THEN
        PERFORM eventkeep_sequence();
    END IF;
    RETURN QUERY SELECT i.id, (SELECT e.position FROM events AS e WHERE e.event_id = i.id)
                   FROM unnest(ids) AS i (id);
END
$$;
