-- INSERT OR REPLACE (and REPLACE INTO) deletes the row it replaces without firing DELETE
-- triggers, unless a connection happens to enable recursive_triggers. Refuse, from any
-- connection, an INSERT that would replace a stored event.

CREATE TRIGGER events_are_append_only_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id)
    OR EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND version = NEW.version)
    OR (NEW.position IS NOT NULL AND EXISTS (SELECT 1 FROM events WHERE position = NEW.position))
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored events are append-only; an INSERT that would replace a stored event (same event_id, stream version or position) is refused');
END;
