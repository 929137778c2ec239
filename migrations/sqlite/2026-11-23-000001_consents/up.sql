-- One consent is one grant in the sense of Grant Management (its id is the `grant_id`): a
-- user (or, for client credentials, the client itself) allowing a client a set of scopes.
-- Each scope of it is one row of `grants`, with the start of its days and its access count.
-- A subject holds at most one default consent per client (the one a plain authorization
-- merges into); Grant Management will add more.
CREATE TABLE consents (
    id TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    is_default BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX consents_default ON consents(subject, client_id) WHERE is_default;
CREATE INDEX consents_client_subject ON consents(client_id, subject);
CREATE INDEX consents_user ON consents(user_id);

INSERT INTO consents (id, subject, user_id, client_id, is_default, created_at, updated_at)
SELECT 'g_' || lower(hex(randomblob(16))), subject, max(user_id), client_id, 1, min(granted_at), max(granted_at)
FROM grants GROUP BY subject, client_id;

-- Grants lose their subject and client (the consent's) and their stored expiry: lapse is
-- computed from `granted_at` and the scope's current `access_duration_days`.
CREATE TABLE grants_by_consent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consent_id TEXT NOT NULL REFERENCES consents(id) ON DELETE CASCADE,
    scope_name TEXT NOT NULL REFERENCES scopes(name) ON DELETE CASCADE,
    granted_at TIMESTAMP NOT NULL,
    access_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (consent_id, scope_name)
);
INSERT INTO grants_by_consent (id, consent_id, scope_name, granted_at, access_count)
SELECT g.id, c.id, g.scope_name, g.granted_at, g.access_count
FROM grants g JOIN consents c ON c.subject = g.subject AND c.client_id = g.client_id;
DROP TABLE grants;
ALTER TABLE grants_by_consent RENAME TO grants;
CREATE INDEX grants_scope ON grants(scope_name);

-- Codes, refresh families and access tokens belong to a consent. A code not yet redeemed dies
-- with it; tokens and families are marked revoked by the revocation itself.
ALTER TABLE authorization_codes ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE CASCADE;
ALTER TABLE refresh_families ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE SET NULL;
ALTER TABLE access_tokens ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE SET NULL;
UPDATE authorization_codes SET consent_id = (SELECT c.id FROM consents c
    WHERE c.subject = authorization_codes.user_id AND c.client_id = authorization_codes.client_id AND c.is_default);
UPDATE refresh_families SET consent_id = (SELECT c.id FROM consents c
    WHERE c.subject = refresh_families.subject AND c.client_id = refresh_families.client_id AND c.is_default);
UPDATE access_tokens SET consent_id = (SELECT c.id FROM consents c
    WHERE c.subject = access_tokens.subject AND c.client_id = access_tokens.client_id AND c.is_default);
CREATE INDEX authorization_codes_consent ON authorization_codes(consent_id);
CREATE INDEX refresh_families_consent ON refresh_families(consent_id);
CREATE INDEX access_tokens_consent ON access_tokens(consent_id);
