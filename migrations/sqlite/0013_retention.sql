-- Retention (issue 17, ADR 0021's companion in README "Retention"). Keep in step with
-- migrations/postgres/0013_retention.sql.

-- The last login (password or Pro Santé Connect), recorded at most once a day per BAL, and
-- when its holder was told that the BAL is inactive; a login clears the warning.
ALTER TABLE bals ADD COLUMN last_login_at BIGINT;
ALTER TABLE bals ADD COLUMN inactivity_warned_at BIGINT;

-- Expiry walks traces by age, in batches.
CREATE INDEX recipients_updated ON recipients(updated_at);
CREATE INDEX tracking_events_received ON tracking_events(received_at);
