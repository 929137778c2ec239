ALTER TABLE grants DROP COLUMN day_count;
ALTER TABLE grants DROP COLUMN counted_day;
ALTER TABLE scopes DROP COLUMN max_accesses_per_day;
