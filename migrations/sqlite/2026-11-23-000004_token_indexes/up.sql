-- Issuing a token is one insert into access_tokens, and every index on it is one more B-tree
-- to write (issue 11's profile: about half of the writer's time). token_hash (opaque tokens
-- only), family_id (refresh families), user_id (users' tokens) and consent_id are indexed only
-- where they are set: a client-credentials JWT writes none of the first three. Lookups by
-- `= ?` (and the foreign keys' cascades) still use them. SQLite cannot drop a column's UNIQUE,
-- so the table is rebuilt. It stays a rowid table: WITHOUT ROWID, keyed by the random jti,
-- put each insert on a random leaf of the whole table and halved issuance (measured), where a
-- rowid table appends.
CREATE TABLE access_tokens_rebuilt (
    jti TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NULL,
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
INSERT INTO access_tokens_rebuilt (jti, token_hash, format, client_id, subject, user_id, scope, family_id,
        issued_at, expires_at, revoked_at, consent_id)
    SELECT jti, token_hash, format, client_id, subject, user_id, scope, family_id,
        issued_at, expires_at, revoked_at, consent_id FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_rebuilt RENAME TO access_tokens;
CREATE UNIQUE INDEX access_tokens_token_hash ON access_tokens(token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX access_tokens_family ON access_tokens(family_id) WHERE family_id IS NOT NULL;
CREATE INDEX access_tokens_client_subject ON access_tokens(client_id, subject);
CREATE INDEX access_tokens_user ON access_tokens(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
CREATE INDEX access_tokens_consent ON access_tokens(consent_id) WHERE consent_id IS NOT NULL;
