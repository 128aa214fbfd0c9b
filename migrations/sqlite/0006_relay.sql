-- Outbound relay and delivery receipts (issue #4). Keep in step with migrations/postgres/0006_relay.sql.

-- Queue lease: a worker that claims a queued recipient sets locked_until; another worker (or
-- node) skips it until then, and a worker that died releases it by expiry (crash safety).
ALTER TABLE recipients ADD COLUMN locked_until BIGINT;
ALTER TABLE recipients ADD COLUMN locked_by TEXT;
-- RFC 3464 fields of the last outcome: enhanced status code and the MTA that answered.
ALTER TABLE recipients ADD COLUMN dsn_status TEXT;
ALTER TABLE recipients ADD COLUMN remote_mta TEXT;
-- A delivery report owed to the sender: delivered | relayed | failed | delayed (NULL: none).
ALTER TABLE recipients ADD COLUMN report_due TEXT;
-- A `delayed` report was already sent for this recipient (RFC 3461 §6.2: at most one per delay).
ALTER TABLE recipients ADD COLUMN delay_reported BIGINT NOT NULL DEFAULT 0;
CREATE INDEX recipients_report_due ON recipients(report_due) WHERE report_due IS NOT NULL;

-- What the far end told us about messages we sent: DSNs and MDNs that came back
-- (SPEC.md §6), matched to the original by Message-ID / ENVID and the recipient address.
CREATE TABLE tracking_events (
    id                 INTEGER PRIMARY KEY,
    message_id         BIGINT  REFERENCES messages(id),   -- our original, when found
    original_msgid     TEXT,                              -- Original-Message-ID / returned Message-ID
    recipient          TEXT    NOT NULL,                  -- Final-Recipient address
    kind               TEXT    NOT NULL CHECK (kind IN ('dsn', 'mdn')),
    state              TEXT    NOT NULL,                  -- dsn: action; mdn: disposition type
    detail             TEXT,                              -- dsn: status + diagnostic; mdn: Disposition field
    error_codes        TEXT,                              -- mdn: 900–906 application codes, space-separated
    report_message_id  BIGINT  REFERENCES messages(id),   -- the report itself
    received_at        BIGINT  NOT NULL
);
CREATE INDEX tracking_events_message ON tracking_events(message_id);
CREATE INDEX tracking_events_msgid ON tracking_events(original_msgid);
