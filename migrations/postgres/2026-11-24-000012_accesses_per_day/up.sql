-- Per-day access limits (issue 15, Berlin Group frequencyPerDay): a scope's
-- max_accesses_per_day (0 = unlimited), and per grant the day it was last counted on (a
-- YYYY-MM-DD date in limits_timezone) with that day's count. One conditional UPDATE counts an
-- access on both, so the limit is exact under concurrency and across instances.
ALTER TABLE scopes ADD COLUMN max_accesses_per_day INTEGER NOT NULL DEFAULT 0
    CHECK (max_accesses_per_day >= 0);
ALTER TABLE grants ADD COLUMN counted_day TEXT NULL;
ALTER TABLE grants ADD COLUMN day_count BIGINT NOT NULL DEFAULT 0;
