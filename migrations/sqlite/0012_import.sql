-- Imports of `mssante import` (ADR 0020): one run per BAL of an archive, named by the SHA-256
-- of the archive's manifest. Messages are staged here (their `messages` rows and bodies are
-- written, but no folder refers to them) and become visible in one transaction that creates
-- the BAL, its folders and their `mailbox_messages`. A run survives a kill: the re-run
-- resumes after the last staged line. Keep in step with migrations/postgres/0012_import.sql.
CREATE TABLE import_runs (
    id           INTEGER PRIMARY KEY,
    archive      TEXT    NOT NULL,                  -- SHA-256 of the manifest
    address      TEXT    NOT NULL,                  -- the BAL, normalised
    state        TEXT    NOT NULL CHECK (state IN ('staging', 'done')),
    bal_id       BIGINT  REFERENCES bals(id),        -- set when done
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    UNIQUE (archive, address)
);

CREATE TABLE import_staged (
    run_id          BIGINT  NOT NULL REFERENCES import_runs(id),
    seq             BIGINT  NOT NULL,               -- line of the BAL's index in the archive
    folder          TEXT    NOT NULL,
    uid             BIGINT  NOT NULL,
    modseq          BIGINT  NOT NULL,
    flags           TEXT    NOT NULL,
    internaldate    BIGINT  NOT NULL,
    source_message  BIGINT  NOT NULL,               -- the message number in the archive: copies share it
    message_id      BIGINT  NOT NULL REFERENCES messages(id),
    source          TEXT    NOT NULL,               -- messages.source once visible
    sent_by_bal     BIGINT  NOT NULL,               -- 1: messages.auth_bal_id is the BAL once visible
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX import_staged_source ON import_staged(run_id, source_message);

-- The messages a BAL submitted, whose receipts state an export carries.
CREATE INDEX messages_auth_bal ON messages(auth_bal_id) WHERE auth_bal_id IS NOT NULL;
