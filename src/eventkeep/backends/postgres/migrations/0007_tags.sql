-- Tags (Dynamic Consistency Boundaries, see eventkeep.store.dcb and docs/dcb.md).
--
-- An event's tags are stored with it (a JSON array of its sorted tags, as text; NULL when it has
-- none) and covered by its hash (eventkeep.store.hashing). event_tags is their index: one row
-- per (tag, event), with the event's type, written by the append's statement, so that a query
-- item's first tag walks its events in position order (types checked in the index, INCLUDE),
-- and an append condition ("any event of these types with these tags after position P?") is
-- one probe of the primary key, whatever the table statistics say. A text[] column with a GIN index was measured
-- against it and lost: GIN cannot give positions in order, so "the first match after P" and a
-- page of a query read visit every event holding the tag (docs/dcb.md, "Storage").
-- Like the events, the tags are append-only.
ALTER TABLE events ADD COLUMN tags text;

CREATE TABLE event_tags (
    tag      text COLLATE "C" NOT NULL,
    position bigint NOT NULL,
    type     text COLLATE "C" NOT NULL,
    CONSTRAINT event_tags_pkey PRIMARY KEY (tag, position) INCLUDE (type)
);

CREATE TRIGGER event_tags_refuse_update BEFORE UPDATE ON event_tags
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_change();

CREATE TRIGGER event_tags_refuse_delete BEFORE DELETE ON event_tags
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_change();

CREATE TRIGGER event_tags_refuse_truncate BEFORE TRUNCATE ON event_tags
    FOR EACH STATEMENT EXECUTE FUNCTION eventkeep_refuse_change();
