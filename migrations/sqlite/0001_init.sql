-- mssante initial schema, SQLite flavour. Keep in step with migrations/postgres/0001_init.sql.
-- Times are unix seconds (BIGINT) so that both engines and sqlx::Any agree on one type.

CREATE TABLE domains (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

-- A BAL (boîte aux lettres), SPEC.md §2.
CREATE TABLE bals (
    id                 INTEGER PRIMARY KEY,
    address            TEXT    NOT NULL UNIQUE,      -- normalised: domain lower-cased, local part lower-cased
    domain_id          BIGINT  NOT NULL REFERENCES domains(id),
    bal_type           TEXT    NOT NULL CHECK (bal_type IN ('PER', 'ORG', 'APP', 'CAB')),
    national_id        TEXT,                         -- PER: 8+RPPS or 0+ADELI
    finess             TEXT,                         -- ORG/APP/CAB: FINESS of the structure
    siret              TEXT,                         -- ORG/APP/CAB: SIRET when no FINESS
    display_name       TEXT,
    status             TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    password_hash      TEXT,                         -- argon2id PHC string; NULL = no password login
    liste_rouge        BIGINT  NOT NULL DEFAULT 0,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    status_changed_at  BIGINT  NOT NULL
);
CREATE INDEX bals_domain ON bals(domain_id);
CREATE INDEX bals_national_id ON bals(national_id);

-- IMAP folders of a BAL (RFC 9051 §2.3.1.1: uidvalidity / uidnext; RFC 7162: highestmodseq).
CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY,
    bal_id         BIGINT  NOT NULL REFERENCES bals(id),
    name           TEXT    NOT NULL,
    special_use    TEXT,
    uidvalidity    BIGINT  NOT NULL,
    uidnext        BIGINT  NOT NULL DEFAULT 1,
    highestmodseq  BIGINT  NOT NULL DEFAULT 1,
    subscribed     BIGINT  NOT NULL DEFAULT 1,
    created_at     BIGINT  NOT NULL,
    UNIQUE (bal_id, name)
);

-- Content-addressed message bodies (sha256 of the bytes); the bytes live in the blob store.
CREATE TABLE blobs (
    hash        TEXT    PRIMARY KEY,
    size        BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- One row per accepted message, whatever the number of recipients.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    blob_hash       TEXT    NOT NULL REFERENCES blobs(hash),
    size            BIGINT  NOT NULL,
    received_at     BIGINT  NOT NULL,
    mail_from       TEXT    NOT NULL,                -- envelope sender, '' for the null sender
    envid           TEXT,                            -- RFC 3461 §4.4
    ret             TEXT,                            -- RFC 3461 §4.3: FULL | HDRS
    source          TEXT    NOT NULL,                -- mx | submission
    auth_bal_id     BIGINT  REFERENCES bals(id),     -- authenticated submitter
    message_id_hdr  TEXT,
    subject         TEXT,
    x_mss_nil       TEXT                             -- SPEC.md §5, kept for statistics
);
CREATE INDEX messages_message_id_hdr ON messages(message_id_hdr);

-- One row per (message, recipient): local deliveries and the outbound queue alike.
CREATE TABLE recipients (
    id            INTEGER PRIMARY KEY,
    message_id    BIGINT  NOT NULL REFERENCES messages(id),
    address       TEXT    NOT NULL,
    orcpt         TEXT,                              -- RFC 3461 §4.2, as received (addr-type;xtext decoded)
    notify        TEXT,                              -- RFC 3461 §4.1: NEVER or a comma list of SUCCESS,FAILURE,DELAY
    bal_id        BIGINT  REFERENCES bals(id),       -- set for local recipients
    status        TEXT    NOT NULL CHECK (status IN ('delivered', 'queued', 'relayed', 'failed')),
    attempts      BIGINT  NOT NULL DEFAULT 0,
    next_attempt  BIGINT,
    last_error    TEXT,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX recipients_message ON recipients(message_id);
CREATE INDEX recipients_queue ON recipients(next_attempt) WHERE status = 'queued';

-- A message in a folder, keyed (mailbox, uid) as IMAP sees it.
CREATE TABLE mailbox_messages (
    mailbox_id    BIGINT  NOT NULL REFERENCES mailboxes(id),
    uid           BIGINT  NOT NULL,
    message_id    BIGINT  NOT NULL REFERENCES messages(id),
    modseq        BIGINT  NOT NULL,
    flags         TEXT    NOT NULL DEFAULT '',       -- space-separated system flags and keywords
    internaldate  BIGINT  NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);

-- Expunged UIDs with the modseq of their removal, for QRESYNC (RFC 7162 §3.2.10).
CREATE TABLE expunged (
    mailbox_id  BIGINT  NOT NULL REFERENCES mailboxes(id),
    uid         BIGINT  NOT NULL,
    modseq      BIGINT  NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
