-- An append in one round trip, when the writer already knows the heads of its streams (from its
-- own earlier appends) and the server's clock (from its earlier round trips): it sends the insert
-- at once, with recorded_at chosen by the client and hashed into the events. This function takes
-- the place of eventkeep_append_position() in that statement: it takes the sequencer's lock and
-- returns the head position, as that one does, and raises SQLSTATE EKC02 (nothing written) if
-- the log's last event was recorded after the time the client chose, so that recorded_at still
-- never goes back along the log. A head the client knew wrongly (another writer appended to the
-- stream meanwhile) is refused by the events' primary key, as for every append. After either,
-- the client appends the usual way (heads and clock read first).
CREATE FUNCTION eventkeep_append_position_not_before(recorded_at timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    head bigint := eventkeep_append_position();  -- the sequencer's lock, then the head
BEGIN
    IF (SELECT e.recorded_at FROM events AS e WHERE e.position IS NOT NULL
        ORDER BY e.position DESC LIMIT 1) > eventkeep_append_position_not_before.recorded_at THEN
        RAISE EXCEPTION 'eventkeep: the log''s last event was recorded after %', recorded_at
            USING ERRCODE = 'EKC02';
    END IF;
    RETURN head;
END
$$;
