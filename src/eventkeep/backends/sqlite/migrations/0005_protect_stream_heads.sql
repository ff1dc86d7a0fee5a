-- The stream heads table follows the stored events: a head may only ever name its stream's
-- last stored event (version, position and hash), and no head is ever deleted. Before this,
-- UPDATE streams SET version = 2 passed verify, and the next append failed as "append-only".
-- Each check is one probe: the stream's last version in the (stream_id, version) index, which
-- also holds its position (the rowid), then that row by rowid for its hash.

CREATE TRIGGER streams_head_matches_insert BEFORE INSERT ON streams
WHEN NOT EXISTS (
    SELECT 1 FROM (SELECT position, version, hash FROM events WHERE stream_id = NEW.stream_id
                   ORDER BY version DESC LIMIT 1)
    WHERE position = NEW.last_position AND version = NEW.version AND hash = NEW.last_hash)
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: a stream head must name its stream''s last stored event (version, position and hash); this INSERT is refused');
END;

CREATE TRIGGER streams_head_matches_update BEFORE UPDATE ON streams
WHEN NEW.stream_id <> OLD.stream_id OR NOT EXISTS (
    SELECT 1 FROM (SELECT position, version, hash FROM events WHERE stream_id = NEW.stream_id
                   ORDER BY version DESC LIMIT 1)
    WHERE position = NEW.last_position AND version = NEW.version AND hash = NEW.last_hash)
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: a stream head must name its stream''s last stored event (version, position and hash); this UPDATE is refused');
END;

CREATE TRIGGER streams_refuse_delete BEFORE DELETE ON streams
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stream heads follow the append-only events; DELETE is refused');
END;
