-- Placeholder, in branch copyfast only: schema version 14 belongs to another branch, merged
-- beside this one. Migrations must be numbered without gaps, so this file holds the number
-- for 0015_bulk_load_state.sql until then. DELETE THIS FILE when that branch's 0014 is merged.
SELECT 1;
