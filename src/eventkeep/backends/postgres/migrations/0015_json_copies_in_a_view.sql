-- The jsonb copies of data and metadata are no longer stored with every event: the view
-- events_json computes them from the exact bytes when a query reads them. Users query
-- `events_json` as they queried `events` (`data ->> 'amount'`, `data @> '{...}'`), and index
-- what they query by expression on the table, for example
--     CREATE INDEX ON events USING gin (eventkeep_json(data_bytes));
-- which a query of `events_json.data` uses (the view is expanded into the table's expression).
--
-- Why: the stored copies were a third of every event's bytes on disk (263 of 745 heap bytes
-- per event for 250-byte data: 972 -> about 710 bytes per event with the indexes, the raw
-- floor's being 707) and the JSON parse of every appended and copied event (a bare COPY into
-- the events table: about 66,000 rows/s with the generated columns against 355,000 without,
-- benchmarks/README.md). The cost moves to the queries that read the jsonb, and is paid only
-- for the rows they read.
--
-- Dropping the columns rewrites nothing: rows stored before keep their bytes until the table
-- is rewritten (VACUUM FULL events; it takes an exclusive lock). An index or view of yours on
-- events.data or events.metadata makes this migration fail with PostgreSQL's list of them:
-- drop them, migrate, and create them again on eventkeep_json(data_bytes) or on events_json.
ALTER TABLE events DROP COLUMN data, DROP COLUMN metadata;

CREATE VIEW events_json AS
SELECT position, stream_id, version, event_id, type, schema_version, recorded_at,
       eventkeep_json(data_bytes) AS data, eventkeep_json(metadata_bytes) AS metadata,
       data_bytes, metadata_bytes, hash
  FROM events;
