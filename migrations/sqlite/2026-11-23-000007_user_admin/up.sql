-- Human administrators and disabled users (SPEC, "Administration"): an administrator signs in
-- at /login and may use the console; a disabled user cannot sign in and her tokens stop.
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP NULL;
