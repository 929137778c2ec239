CREATE TABLE access_tokens_rebuilt (
    jti TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NULL UNIQUE,
    format TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    user_id TEXT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    family_id TEXT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NULL,
    consent_id TEXT NULL REFERENCES consents(id) ON DELETE SET NULL
);
INSERT INTO access_tokens_rebuilt SELECT jti, token_hash, format, client_id, subject, user_id, scope, family_id,
    issued_at, expires_at, revoked_at, consent_id FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_rebuilt RENAME TO access_tokens;
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_client_subject ON access_tokens(client_id, subject);
CREATE INDEX access_tokens_user ON access_tokens(user_id);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
CREATE INDEX access_tokens_consent ON access_tokens(consent_id);
