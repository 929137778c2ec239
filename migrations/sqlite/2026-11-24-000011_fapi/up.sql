-- FAPI 2.0 (issue 14): how each client authenticates (RFC 7591 token_endpoint_auth_method),
-- the public keys of private_key_jwt clients, and two per-client requirements.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
UPDATE clients SET token_endpoint_auth_method = 'none' WHERE NOT confidential;
-- A JWK Set in JSON; public keys only.
ALTER TABLE clients ADD COLUMN jwks TEXT NULL;
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;

-- DPoP (RFC 9449): the thumbprint of the key a token is bound to (cnf.jkt); for a refresh
-- family, set only for public clients, whose refresh tokens are bound to the key (§5).
ALTER TABLE access_tokens ADD COLUMN dpop_jkt TEXT NULL;
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT NULL;

-- One-time JWT ids seen by any instance: client assertions (RFC 7523 §3, until their exp) and
-- DPoP proofs (RFC 9449 §11.1, for the iat window). Keyed hashes of "kind:issuer:jti"; the
-- primary key makes a second use fail on every instance at once. Housekeeping prunes them.
CREATE TABLE used_jtis (
    jti_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX used_jtis_expires ON used_jtis(expires_at);
