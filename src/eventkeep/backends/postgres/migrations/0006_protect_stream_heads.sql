-- The stream heads table follows the stored events: a head may only ever name its stream's
-- last stored event (version and hash), and no head is ever deleted. Before this, UPDATE
-- streams SET version = 2 passed verify, and the next append failed as "append-only".
--
-- The check runs AFTER the row change: an append inserts its events and upserts its heads in
-- one statement (data-modifying CTEs, one snapshot), and only at the end of the statement are
-- its events visible to the check. Two probes of the primary key index (stream_id, version):
-- the head's event (one heap fetch for its hash) and "no later version" (index only).
CREATE FUNCTION eventkeep_check_head() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF NEW.stream_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.stream_id
                                          ELSE NEW.stream_id END)
       OR NOT EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id
                      AND version = NEW.version AND hash = NEW.last_hash)
       OR EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id
                  AND version > NEW.version) THEN
        RAISE EXCEPTION 'eventkeep: a stream head must name its stream''s last stored event '
            '(version and hash); this % is refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION eventkeep_refuse_head_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'eventkeep: stream heads follow the append-only events; % is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER streams_head_matches AFTER INSERT OR UPDATE ON streams
    FOR EACH ROW EXECUTE FUNCTION eventkeep_check_head();

CREATE TRIGGER streams_refuse_delete BEFORE DELETE ON streams
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_head_change();

CREATE TRIGGER streams_refuse_truncate BEFORE TRUNCATE ON streams
    FOR EACH STATEMENT EXECUTE FUNCTION eventkeep_refuse_head_change();
