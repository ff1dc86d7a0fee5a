-- No stream head is stored any more. A stream's head (its last version, hash and time) is read
-- from its last event, backwards along the events' primary key (stream_id, version), or, for a
-- stream whose last events a logged operation removed, from the removal (eventkeep_removed,
-- whose primary key is (stream_id, last_version)). The `streams` table, a row per stream
-- upserted by every append, is dropped. The streams themselves (list_streams, the count in
-- stats) are the entries of the partial index events_stream_starts (a stream's version 1), with
-- the streams whose version 1 a logged operation removed.
--
-- Why: the head upsert and its row-level check were the largest server-side piece of an append
-- that the hash chain, idempotency and commit order do not need (45 µs of server CPU of a
-- single-event append's 180, benchmarks/pg_costs.py --attribute), and, once a store has more
-- streams than shared_buffers holds head rows, a random page read per append
-- (benchmarks/growth_pages.py: 0.5-1.2 blocks per append at 1M events, none at 10k). The head
-- is on the page of the primary key that the append's unique check reads anyway. The partial
-- index costs an entry per stream, written by the append of its version 1 only.
--
-- What held the heads in step, and what does it now:
-- * optimistic concurrency: the events' primary key refuses a second event at a version, as it
--   always did (the head upsert never decided a conflict);
-- * appends inside a store transaction locked their head rows; they hold the sequencer's lock,
--   taken first, which no other append passes before they commit;
-- * the head trigger (0006) kept a head from naming anything but its stream's last event: with
--   no stored head there is nothing to disagree. A stream's tail deleted behind the triggers is
--   no longer visible to verify through its head, as a tail cut with its head moved back never
--   was: anchors (docs/security.md) find both.
--
-- Building the index reads the events table once, holding off appends meanwhile (seconds per
-- million events). A view or function of yours on `streams` makes this migration fail with
-- PostgreSQL's list of them: drop them, migrate, and read a stream's version as the highest
-- version of its events.
DROP TABLE streams;
DROP FUNCTION eventkeep_check_head();
DROP FUNCTION eventkeep_refuse_head_change();

CREATE INDEX events_stream_starts ON events (stream_id) WHERE version = 1;
