-- The HTTP API for software (ADR 0018). Keep in step with migrations/postgres/0011_api.sql.

-- API keys: the secret is shown once and stored as its SHA-256 (a 256-bit random secret
-- needs no slow hash). A key acts on the BALs of one domain, on listed BALs, or (admin
-- scope) on everything.
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    key_id        TEXT    NOT NULL UNIQUE,   -- public part of the key, named in logs and lists
    secret_hash   TEXT    NOT NULL,          -- hex SHA-256 of the whole key
    name          TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,          -- space-separated: send read status directory admin
    domain        TEXT,                      -- the key acts on this domain's BALs
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE TABLE api_key_bals (
    key_id        BIGINT  NOT NULL REFERENCES api_keys(id),
    bal_id        BIGINT  NOT NULL REFERENCES bals(id),
    PRIMARY KEY (key_id, bal_id)
);

-- Idempotency-Key of writes: the first answer is kept and replayed; the same key with
-- another request is refused.
CREATE TABLE api_idempotency (
    client        TEXT    NOT NULL,          -- who sent it (key id, or PSC identity hash)
    idem_key      TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,          -- SHA-256 of method, path and body
    status        INTEGER NOT NULL,
    response      TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (client, idem_key)
);

-- Messages sent through the API, with the client that sent them (webhooks follow them).
CREATE TABLE api_sent (
    message_id    BIGINT  NOT NULL PRIMARY KEY REFERENCES messages(id),
    client        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    settled       INTEGER NOT NULL DEFAULT 0  -- 1 once every recipient reached a final state
);
CREATE INDEX api_sent_open ON api_sent(settled, message_id);

-- Webhooks of a client, and the outbox of their deliveries: an event is written in the
-- same transaction as the state it reports was noticed, and stays until delivered.
CREATE TABLE api_webhooks (
    id            INTEGER PRIMARY KEY,
    client        TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    secret        TEXT    NOT NULL,          -- HMAC-SHA256 key shared with the receiver
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE TABLE api_notified (
    message_id    BIGINT  NOT NULL REFERENCES messages(id),
    recipient     TEXT    NOT NULL,
    state         TEXT    NOT NULL,          -- last state told to the webhooks
    disposition   TEXT,                      -- last MDN disposition told
    PRIMARY KEY (message_id, recipient)
);
CREATE TABLE api_webhook_outbox (
    id            INTEGER PRIMARY KEY,
    webhook_id    BIGINT  NOT NULL REFERENCES api_webhooks(id),
    payload       TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at  BIGINT,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX api_webhook_outbox_due ON api_webhook_outbox(delivered_at, next_attempt_at);
