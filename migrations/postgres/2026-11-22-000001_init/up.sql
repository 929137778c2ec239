-- The whole data model. Timestamps are UTC. Lists are JSON text (portable across both backends).
-- Tokens, codes and secrets are stored only as keyed hashes.

CREATE TABLE scopes (
    name TEXT PRIMARY KEY NOT NULL,
    parent TEXT NULL REFERENCES scopes(name) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    alias TEXT NULL,
    short_description TEXT NOT NULL,
    description TEXT NULL,
    visibility TEXT NOT NULL DEFAULT 'public',
    default_scope BOOLEAN NOT NULL DEFAULT FALSE,
    user_authorization_required BOOLEAN NOT NULL DEFAULT TRUE,
    access_duration_days INTEGER NOT NULL DEFAULT 0,
    max_access_count INTEGER NOT NULL DEFAULT 0,
    security_level TEXT NOT NULL DEFAULT 'F',
    auth_types TEXT NOT NULL DEFAULT '[]',
    operations TEXT NOT NULL DEFAULT '[]',
    bank_level BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX scopes_parent_position ON scopes(parent, position);

-- Reserved: the admin API's scope exists from the start.
INSERT INTO scopes (name, short_description, description, visibility, user_authorization_required, security_level, auth_types)
VALUES ('scopegate:admin', 'Administer scopegate', 'Manage scopes, clients, users and grants through the admin API.',
        'private', FALSE, 'F', '["client_credentials"]');

-- Bumped by every registry change, so other instances know to reload their cached tree.
CREATE TABLE registry_version (
    id INTEGER PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 1);

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    confidential BOOLEAN NOT NULL,
    secret_hash TEXT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types TEXT NOT NULL DEFAULT '[]',
    security_level TEXT NOT NULL DEFAULT 'F',
    token_format TEXT NOT NULL DEFAULT 'jwt',
    can_introspect BOOLEAN NOT NULL DEFAULT FALSE,
    admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE client_scopes (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope_name TEXT NOT NULL REFERENCES scopes(name),
    bank_id TEXT NOT NULL DEFAULT '',
    assigned_at TIMESTAMP NOT NULL,
    UNIQUE (client_id, scope_name, bank_id)
);
CREATE INDEX client_scopes_scope ON client_scopes(scope_name);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NULL,
    created_at TIMESTAMP NOT NULL
);

-- One consent: a subject (a user's id, or the client's own id for client credentials)
-- allowed a client one scope. A new consent restarts granted_at and access_count.
CREATE TABLE grants (
    id BIGSERIAL PRIMARY KEY,
    subject TEXT NOT NULL,
    user_id TEXT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope_name TEXT NOT NULL REFERENCES scopes(name) ON DELETE CASCADE,
    granted_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NULL,
    access_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (subject, client_id, scope_name)
);
CREATE INDEX grants_client ON grants(client_id);
CREATE INDEX grants_scope ON grants(scope_name);
CREATE INDEX grants_user ON grants(user_id);

-- Everything issued from one authorization: its refresh tokens rotate inside it, and a
-- replayed code or refresh token revokes the whole family.
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    user_id TEXT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NULL
);
CREATE INDEX refresh_families_client_subject ON refresh_families(client_id, subject);

CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    extensions TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP NULL,
    family_id TEXT NULL
);
CREATE INDEX authorization_codes_expires ON authorization_codes(expires_at);

CREATE TABLE access_tokens (
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
    revoked_at TIMESTAMP NULL
);
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_client_subject ON access_tokens(client_id, subject);
CREATE INDEX access_tokens_user ON access_tokens(user_id);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

-- Public halves of the signing keys, so every instance publishes every key; the private
-- keys stay in the keys directory.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP NULL
);
