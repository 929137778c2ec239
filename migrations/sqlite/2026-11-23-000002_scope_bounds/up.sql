-- access_duration_days is bounded to 0–36500 (SPEC "Field bounds"), and the registry refuses to
-- load a scope outside the bounds. Older versions accepted more; a duration past a hundred
-- years behaved as unlimited anyway, so such rows become the largest allowed value.
UPDATE scopes SET access_duration_days = 36500 WHERE access_duration_days > 36500;
