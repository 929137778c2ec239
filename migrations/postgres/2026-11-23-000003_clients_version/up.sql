-- A second counter beside the scope registry's: every change to a client or its assignments
-- bumps it, so every instance's cached clients (storage::client_directory) are dropped within
-- one poll.
INSERT INTO registry_version (id, version) VALUES (2, 1);
