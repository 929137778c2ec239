-- Back to one grant per scope name: the values of a parameterised scope but one are lost.
CREATE TABLE grants_by_name (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consent_id TEXT NOT NULL REFERENCES consents(id) ON DELETE CASCADE,
    scope_name TEXT NOT NULL REFERENCES scopes(name) ON DELETE CASCADE,
    granted_at TIMESTAMP NOT NULL,
    access_count BIGINT NOT NULL DEFAULT 0,
    counted_day TEXT NULL,
    day_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (consent_id, scope_name)
);
INSERT INTO grants_by_name (id, consent_id, scope_name, granted_at, access_count, counted_day, day_count)
SELECT min(id), consent_id, scope_name, min(granted_at), max(access_count), max(counted_day), max(day_count)
FROM grants GROUP BY consent_id, scope_name;
DROP TABLE grants;
ALTER TABLE grants_by_name RENAME TO grants;
CREATE INDEX grants_scope ON grants(scope_name);
ALTER TABLE scopes DROP COLUMN parameterised;
