-- The stream heads table follows the stored events: a head may only ever name its stream's
-- last stored event (version and hash), and no head is ever deleted. Before this, UPDATE
-- streams SET version = 2 passed verify, and the next append failed as "append-only".
--
-- The check runs AFTER the row change: an append inserts its events and upserts its heads in
-- one statement (data-modifying CTEs, one snapshot), and only at the end of the statement are
-- its events visible to the check. One probe: the stream's last version, backwards along the
-- primary key index (stream_id, version), and that row's hash.
CREATE FUNCTION eventkeep_check_head() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    last_version bigint;
    last_hash bytea;
BEGIN
    SELECT e.version, e.hash INTO last_version, last_hash FROM events AS e
     WHERE e.stream_id = NEW.stream_id ORDER BY e.version DESC LIMIT 1;
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
