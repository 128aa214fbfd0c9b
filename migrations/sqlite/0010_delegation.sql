-- Delegation of a BAL (issue 14, ADR 0016): per-folder rights of a grant, and the audit trail.
-- Keep in step with migrations/postgres/0010_delegation.sql.

-- Rights of a delegation on some folders. A grant whose own `rights` is empty opens only the
-- folders listed here; otherwise a row overrides the grant's rights for that folder. A row
-- covers the folder and its subfolders (the longest listed name wins).
CREATE TABLE access_grant_folders (
    grant_id  BIGINT NOT NULL REFERENCES access_grants(id) ON DELETE CASCADE,
    folder    TEXT   NOT NULL,
    rights    TEXT   NOT NULL,              -- RFC 4314 rights letters
    PRIMARY KEY (grant_id, folder)
);

-- Append-only audit trail, chained per BAL: `hash` is SHA-256 over `prev_hash` and the
-- entry's fields (store/src/audit.rs), so editing or removing an entry breaks the chain
-- from there on. Never holds message content: message ids are UIDs and Message-IDs.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    bal_id       BIGINT NOT NULL REFERENCES bals(id),
    seq          BIGINT NOT NULL,           -- 1, 2, … within the BAL
    at           BIGINT NOT NULL,           -- unix seconds
    author       TEXT   NOT NULL,           -- who acted: a BAL address or a PSC identity
    action       TEXT   NOT NULL,
    folder       TEXT   NOT NULL DEFAULT '',
    message_ids  TEXT   NOT NULL DEFAULT '',
    client       TEXT   NOT NULL DEFAULT '',
    result       TEXT   NOT NULL,
    detail       TEXT   NOT NULL DEFAULT '',
    prev_hash    TEXT   NOT NULL,
    hash         TEXT   NOT NULL,
    UNIQUE (bal_id, seq)
);
CREATE INDEX audit_log_time ON audit_log(bal_id, at);
