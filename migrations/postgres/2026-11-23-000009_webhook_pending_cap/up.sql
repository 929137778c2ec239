-- Enqueueing checks how many deliveries a webhook has pending (at most
-- `MAX_PENDING_DELIVERIES`, domain::webhook): an index over the pending ones alone.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(webhook_id) WHERE state = 'pending';
