-- The audit trail (SPEC, "Administration"): one row per event, written in the transaction of
-- the change it records. No foreign keys: an event outlives the client, user or scope it names.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    event_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    client_id TEXT NULL,
    username TEXT NULL,
    scope TEXT NULL,
    detail TEXT NOT NULL
);
-- Pruning after event_retention_days; listing is newest first by id.
CREATE INDEX events_at ON events(at);
