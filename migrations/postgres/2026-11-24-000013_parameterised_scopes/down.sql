-- Back to one grant per scope name: the values of a parameterised scope but one are lost.
DELETE FROM grants g USING grants other
    WHERE g.consent_id = other.consent_id AND g.scope_name = other.scope_name AND g.id > other.id;
ALTER TABLE grants DROP CONSTRAINT grants_consent_scope;
ALTER TABLE grants DROP COLUMN scope;
ALTER TABLE grants ADD CONSTRAINT grants_consent_scope UNIQUE (consent_id, scope_name);
ALTER TABLE scopes DROP COLUMN parameterised;
