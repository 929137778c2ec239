-- Signed-in browser sessions (SPEC Part 2, "Sessions"). The cookie carries a random session
-- id; only its keyed hash is stored. Logout deletes the row, so a copy of the cookie stops
-- working on every instance; the idle timeout and the absolute lifetime are computed from
-- the two instants and the current settings.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_last_seen ON sessions(last_seen_at);
CREATE INDEX sessions_created ON sessions(created_at);

-- Failed sign-in attempts of the last 15 minutes, counted per username (as typed, known or
-- not) and per client address by the sign-in throttle.
CREATE TABLE login_failures (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_username ON login_failures(username, failed_at);
CREATE INDEX login_failures_address ON login_failures(address, failed_at);
