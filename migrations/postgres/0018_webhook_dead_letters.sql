-- Webhooks (ADR 0019): deliveries that failed every attempt are set aside as dead letters,
-- listed by the API and retried on demand. Keep in step with migrations/sqlite/0018_webhook_dead_letters.sql.

-- When the last attempt failed and delivery stopped; NULL while pending or once delivered.
ALTER TABLE api_webhook_outbox ADD COLUMN dead_at BIGINT;

-- A webhook's deliveries page by page (GET /api/v1/webhooks/{id}/deliveries).
CREATE INDEX api_webhook_outbox_hook ON api_webhook_outbox(webhook_id, id);
