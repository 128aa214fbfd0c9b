-- \Recent (RFC 3501 §2.3.2): messages with uid >= first_recent_uid have not been seen by any
-- read-write session yet; the first session to select the mailbox claims them.
ALTER TABLE mailboxes ADD COLUMN first_recent_uid BIGINT NOT NULL DEFAULT 1;
