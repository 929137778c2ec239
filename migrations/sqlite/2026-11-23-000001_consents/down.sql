DROP INDEX access_tokens_consent;
DROP INDEX refresh_families_consent;
DROP INDEX authorization_codes_consent;
ALTER TABLE access_tokens DROP COLUMN consent_id;
ALTER TABLE refresh_families DROP COLUMN consent_id;
ALTER TABLE authorization_codes DROP COLUMN consent_id;
CREATE TABLE grants_flat (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    user_id TEXT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope_name TEXT NOT NULL REFERENCES scopes(name) ON DELETE CASCADE,
    granted_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NULL,
    access_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (subject, client_id, scope_name)
);
INSERT OR IGNORE INTO grants_flat (subject, user_id, client_id, scope_name, granted_at, expires_at, access_count)
SELECT c.subject, c.user_id, c.client_id, g.scope_name, g.granted_at, NULL, g.access_count
FROM grants g JOIN consents c ON c.id = g.consent_id;
DROP TABLE grants;
ALTER TABLE grants_flat RENAME TO grants;
CREATE INDEX grants_client ON grants(client_id);
CREATE INDEX grants_scope ON grants(scope_name);
CREATE INDEX grants_user ON grants(user_id);
DROP TABLE consents;
