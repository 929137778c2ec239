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
SELECT 'g_' || md5(random()::text || clock_timestamp()::text || subject || client_id),
       subject, max(user_id), client_id, TRUE, min(granted_at), max(granted_at)
FROM grants GROUP BY subject, client_id;

-- Grants lose their subject and client (the consent's) and their stored expiry: lapse is
-- computed from `granted_at` and the scope's current `access_duration_days`.
ALTER TABLE grants ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE CASCADE;
UPDATE grants SET consent_id = c.id FROM consents c WHERE c.subject = grants.subject AND c.client_id = grants.client_id;
ALTER TABLE grants ALTER COLUMN consent_id SET NOT NULL;
ALTER TABLE grants DROP CONSTRAINT grants_subject_client_id_scope_name_key;
DROP INDEX grants_client;
DROP INDEX grants_user;
ALTER TABLE grants DROP COLUMN subject, DROP COLUMN user_id, DROP COLUMN client_id, DROP COLUMN expires_at;
ALTER TABLE grants ADD CONSTRAINT grants_consent_scope UNIQUE (consent_id, scope_name);

-- Codes, refresh families and access tokens belong to a consent. A code not yet redeemed dies
-- with it; tokens and families are marked revoked by the revocation itself.
ALTER TABLE authorization_codes ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE CASCADE;
ALTER TABLE refresh_families ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE SET NULL;
ALTER TABLE access_tokens ADD COLUMN consent_id TEXT NULL REFERENCES consents(id) ON DELETE SET NULL;
UPDATE authorization_codes SET consent_id = c.id FROM consents c
    WHERE c.subject = authorization_codes.user_id AND c.client_id = authorization_codes.client_id AND c.is_default;
UPDATE refresh_families SET consent_id = c.id FROM consents c
    WHERE c.subject = refresh_families.subject AND c.client_id = refresh_families.client_id AND c.is_default;
UPDATE access_tokens SET consent_id = c.id FROM consents c
    WHERE c.subject = access_tokens.subject AND c.client_id = access_tokens.client_id AND c.is_default;
CREATE INDEX authorization_codes_consent ON authorization_codes(consent_id);
CREATE INDEX refresh_families_consent ON refresh_families(consent_id);
CREATE INDEX access_tokens_consent ON access_tokens(consent_id);
