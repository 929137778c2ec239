DROP INDEX access_tokens_consent;
DROP INDEX refresh_families_consent;
DROP INDEX authorization_codes_consent;
ALTER TABLE access_tokens DROP COLUMN consent_id;
ALTER TABLE refresh_families DROP COLUMN consent_id;
ALTER TABLE authorization_codes DROP COLUMN consent_id;
ALTER TABLE grants ADD COLUMN subject TEXT, ADD COLUMN user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    ADD COLUMN client_id TEXT REFERENCES clients(client_id) ON DELETE CASCADE, ADD COLUMN expires_at TIMESTAMP NULL;
UPDATE grants SET subject = c.subject, user_id = c.user_id, client_id = c.client_id FROM consents c WHERE c.id = grants.consent_id;
ALTER TABLE grants DROP CONSTRAINT grants_consent_scope;
ALTER TABLE grants DROP COLUMN consent_id;
ALTER TABLE grants ALTER COLUMN subject SET NOT NULL, ALTER COLUMN client_id SET NOT NULL;
ALTER TABLE grants ADD CONSTRAINT grants_subject_client_id_scope_name_key UNIQUE (subject, client_id, scope_name);
CREATE INDEX grants_client ON grants(client_id);
CREATE INDEX grants_user ON grants(user_id);
DROP TABLE consents;
