-- The audit trail (SPEC, "Administration"): one row per event, written in the transaction of
-- the change it records. No foreign keys: an event outlives the client, user or scope it names.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    event_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    client_id TEXT NULL,
    username TEXT NULL,
    scope TEXT NULL,
    detail TEXT NOT NULL
);
-- Pruning after event_retention_days; listing is newest first by id, filtered by these.
CREATE INDEX events_at ON events(at);
CREATE INDEX events_type ON events(event_type, id);
CREATE INDEX events_username ON events(username, id) WHERE username IS NOT NULL;
CREATE INDEX events_client ON events(client_id, id) WHERE client_id IS NOT NULL;
CREATE INDEX events_scope ON events(scope, id) WHERE scope IS NOT NULL;
