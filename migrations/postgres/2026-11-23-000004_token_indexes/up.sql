-- Issuing a token is one insert into access_tokens, and every index on it is one more B-tree
-- to write. token_hash (opaque tokens only), family_id (refresh families), user_id (users'
-- tokens) and consent_id are indexed only where they are set: a client-credentials JWT writes
-- none of the first three. Lookups by `= $1` (and the foreign keys' cascades) still use them.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_token_hash_key;
CREATE UNIQUE INDEX access_tokens_token_hash ON access_tokens(token_hash) WHERE token_hash IS NOT NULL;
DROP INDEX access_tokens_family;
CREATE INDEX access_tokens_family ON access_tokens(family_id) WHERE family_id IS NOT NULL;
DROP INDEX access_tokens_user;
CREATE INDEX access_tokens_user ON access_tokens(user_id) WHERE user_id IS NOT NULL;
DROP INDEX access_tokens_consent;
CREATE INDEX access_tokens_consent ON access_tokens(consent_id) WHERE consent_id IS NOT NULL;
