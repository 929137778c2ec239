-- A parameterised scope always asks the user (issue 15): each value is a fresh grant with fresh
-- limits, so one granted without asking would let a client renew its limits by naming a new
-- value. The previous version did not refuse such a scope; this turns the question on for any
-- it stored, so the registry holds the rule from the first start, and bumps the registry
-- version so a running instance reloads.
UPDATE scopes SET user_authorization_required = TRUE WHERE parameterised = TRUE AND user_authorization_required = FALSE;
UPDATE registry_version SET version = version + 1 WHERE id = 1;
