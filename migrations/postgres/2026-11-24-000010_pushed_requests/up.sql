-- Pushed authorization requests (RFC 9126, issue 14): the parameters a client pushed to /par,
-- under the keyed hash of the request_uri's random part, usable once until expires_at (60 s).
-- In the database, so that any instance can answer /authorize for a request pushed to another.
CREATE TABLE pushed_requests (
    handle_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    -- The authorization parameters, as a JSON object of strings.
    parameters TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP NULL
);
-- Housekeeping deletes the expired ones.
CREATE INDEX pushed_requests_expires ON pushed_requests(expires_at);
