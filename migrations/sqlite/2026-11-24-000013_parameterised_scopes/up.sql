-- Parameterised scopes (issue 15): a scope marked `parameterised` is granted per value, as
-- `<name>:<value>` (`payments.transfer:PAY-123`). A grant row keeps the concrete string it was
-- granted as in `scope` (the scope's name for a plain scope), and `scope_name` stays its
-- registry scope, so deleting a scope still deletes its grants and the in-use check still
-- finds them. One grant per value: the unique key moves from the name to the concrete string.
ALTER TABLE scopes ADD COLUMN parameterised BOOLEAN NOT NULL DEFAULT FALSE;

-- SQLite cannot drop a table constraint: the table is rebuilt (nothing references grants).
CREATE TABLE grants_by_value (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consent_id TEXT NOT NULL REFERENCES consents(id) ON DELETE CASCADE,
    scope_name TEXT NOT NULL REFERENCES scopes(name) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    access_count BIGINT NOT NULL DEFAULT 0,
    counted_day TEXT NULL,
    day_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (consent_id, scope)
);
INSERT INTO grants_by_value (id, consent_id, scope_name, scope, granted_at, access_count, counted_day, day_count)
SELECT id, consent_id, scope_name, scope_name, granted_at, access_count, counted_day, day_count FROM grants;
DROP TABLE grants;
ALTER TABLE grants_by_value RENAME TO grants;
CREATE INDEX grants_scope ON grants(scope_name);
