-- The clamped durations cannot be told apart from real ones: nothing to undo.
SELECT 1;
