-- Webhooks (SPEC, "Administration"): receivers, the event types each is subscribed to, and the
-- durable outbox of deliveries. A delivery row is written in the transaction of the event it
-- carries (`storage::events::insert`), so an event and its deliveries commit or roll back
-- together, and a restart loses nothing.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    -- Needed in the clear to sign each delivery; never returned by the API nor logged.
    secret TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE webhook_subscriptions (
    webhook_id BIGINT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_type)
);
-- Enqueueing looks the subscribers of an event type up here, on every event recorded.
CREATE INDEX webhook_subscriptions_event_type ON webhook_subscriptions(event_type, webhook_id);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id BIGINT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    -- Pruning an event (event_retention_days) takes its deliveries with it.
    event_id BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    -- pending, delivered or failed (gave up 24 hours after created_at).
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    -- When a pending delivery is next due; a worker that claims it moves it forward as a lease.
    next_attempt_at TIMESTAMP NOT NULL,
    last_status INTEGER NULL,
    last_error TEXT NULL,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP NULL
);
-- The worker's poll: pending deliveries by due time, nothing else.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
-- A webhook's delivery log, newest first.
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, id);
-- The cascade when events are pruned.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);

-- Every attempt of a delivery: when, the receiver's status or the error.
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at TIMESTAMP NOT NULL,
    status INTEGER NULL,
    error TEXT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, id);
