-- Parameterised scopes (issue 15): a scope marked `parameterised` is granted per value, as
-- `<name>:<value>` (`payments.transfer:PAY-123`). A grant row keeps the concrete string it was
-- granted as in `scope` (the scope's name for a plain scope), and `scope_name` stays its
-- registry scope, so deleting a scope still deletes its grants and the in-use check still
-- finds them. One grant per value: the unique key moves from the name to the concrete string.
ALTER TABLE scopes ADD COLUMN parameterised BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE grants ADD COLUMN scope TEXT NULL;
UPDATE grants SET scope = scope_name;
ALTER TABLE grants ALTER COLUMN scope SET NOT NULL;
ALTER TABLE grants DROP CONSTRAINT grants_consent_scope;
ALTER TABLE grants ADD CONSTRAINT grants_consent_scope UNIQUE (consent_id, scope);
