-- Nothing to undo: which scopes the up migration changed is not recorded, and asking the user
-- is the safe value for all of them.
SELECT 1;
