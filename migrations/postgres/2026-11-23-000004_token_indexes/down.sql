DROP INDEX access_tokens_consent;
CREATE INDEX access_tokens_consent ON access_tokens(consent_id);
DROP INDEX access_tokens_user;
CREATE INDEX access_tokens_user ON access_tokens(user_id);
DROP INDEX access_tokens_family;
CREATE INDEX access_tokens_family ON access_tokens(family_id);
DROP INDEX access_tokens_token_hash;
ALTER TABLE access_tokens ADD CONSTRAINT access_tokens_token_hash_key UNIQUE (token_hash);
