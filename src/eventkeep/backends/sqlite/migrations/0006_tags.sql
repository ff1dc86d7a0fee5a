-- Tags (Dynamic Consistency Boundaries, see eventkeep.store.dcb and docs/dcb.md).
--
-- An event's tags are stored with it (a JSON array of the sorted tags, NULL when it has none)
-- and are covered by its hash (see eventkeep.store.hashing); event_tags is their index: one row
-- per (tag, event), with the event's type, so that a query item's first tag finds its events
-- in position order, types checked in the same row, and an append condition ("any event of
-- these types with these tags after position P?") is one index probe.
-- Like the events, the tags are append-only.
ALTER TABLE events ADD COLUMN tags TEXT;

CREATE TABLE event_tags (
    tag      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    type     TEXT    NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;

CREATE TRIGGER event_tags_are_append_only_update BEFORE UPDATE ON event_tags
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored tags are append-only; UPDATE is refused');
END;

CREATE TRIGGER event_tags_are_append_only_delete BEFORE DELETE ON event_tags
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: stored tags are append-only; DELETE is refused');
END;
