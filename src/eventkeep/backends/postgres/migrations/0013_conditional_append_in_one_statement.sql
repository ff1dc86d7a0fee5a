-- A conditional append in one round trip (see plans._append_known with a condition): the client
-- knows the heads of its streams and the server's clock (plans.Known), and sends the insert
-- at once. The statement itself reads, from its own snapshot (taken when it starts, before any
-- lock), the first event matching the append condition's query after its position and the
-- head position, and passes both to this function in place of eventkeep_append_position():
--
-- * a match (not NULL): SQLSTATE EKC03, nothing written and no lock taken; the client decides
--   under the lock (the condition failed, unless the append is a re-send of one stored, whose
--   own events match);
-- * otherwise it takes the sequencer's lock (held to the commit) and raises SQLSTATE EKC01
--   unless the head position is still the one the statement's snapshot saw: then no event at
--   all was committed between the check and the lock, and the check still holds (positions
--   are numbered in commit order under that lock, so any commit moves the head); and SQLSTATE
--   EKC02 if the log's last event was recorded after the client's time, as
--   eventkeep_append_position_not_before() does (0012).
--
-- After any of them the client appends the usual way (0007's two round trips, or the lock).
CREATE FUNCTION eventkeep_append_position_unmatched(
    seen_head bigint, first_match bigint, recorded_at timestamptz
) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    head bigint;
BEGIN
    IF first_match IS NOT NULL THEN
        RAISE EXCEPTION 'eventkeep: an event matching the append condition is at position %',
            first_match USING ERRCODE = 'EKC03';
    END IF;
    head := eventkeep_append_position();  -- the sequencer's lock, then the head
    IF head <> seen_head THEN
        RAISE EXCEPTION 'eventkeep: the log moved from position % to % since the append '
            'condition was checked', seen_head, head USING ERRCODE = 'EKC01';
    END IF;
    -- As eventkeep_append_position_not_before() (0012), without a third nested call.
    IF (SELECT e.recorded_at FROM events AS e WHERE e.position IS NOT NULL
        ORDER BY e.position DESC LIMIT 1) > eventkeep_append_position_unmatched.recorded_at THEN
        RAISE EXCEPTION 'eventkeep: the log''s last event was recorded after %', recorded_at
            USING ERRCODE = 'EKC02';
    END IF;
    RETURN head;
END
$$;
