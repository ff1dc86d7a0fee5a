-- Placeholder for the migration another part of issue 15 adds with this number (keeps this
-- branch's migrations gap-free on its own). Replace it with that migration when merging.
SELECT 1;
