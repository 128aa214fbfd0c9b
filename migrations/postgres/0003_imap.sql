-- IMAP support: subscriptions (RFC 9051 §6.3.7 allows subscribing to names that do not
-- exist), a monotonic UIDVALIDITY source, per-BAL storage quota (RFC 9208).

CREATE TABLE subscriptions (
    bal_id  BIGINT  NOT NULL REFERENCES bals(id),
    name    TEXT    NOT NULL,
    PRIMARY KEY (bal_id, name)
);

-- Monotonic counters; 'uidvalidity' makes sure a re-created or renamed mailbox never gets a
-- UIDVALIDITY it had before (RFC 9051 §2.3.1.1), even within the same second.
CREATE TABLE counters (
    name   TEXT    PRIMARY KEY,
    value  BIGINT  NOT NULL
);
INSERT INTO counters (name, value) VALUES ('uidvalidity', 0);

ALTER TABLE bals ADD COLUMN quota_bytes BIGINT;

INSERT INTO subscriptions (bal_id, name) SELECT bal_id, name FROM mailboxes WHERE subscribed = 1;
