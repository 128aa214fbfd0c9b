-- Per-delegate \Seen carried by an import (archive format 2, ADR 0034): staged beside
-- import_staged and placed into delegate_seen in the transaction that makes the BAL
-- visible, then deleted with the rest of the run's staging. Keep in step with
-- migrations/sqlite/0029_import_delegate_seen.sql.
CREATE TABLE import_staged_seen (
    run_id  BIGINT  NOT NULL,
    seq     BIGINT  NOT NULL,               -- the import_staged line it belongs to
    reader  TEXT    NOT NULL,               -- the delegate (address or PSC identity)
    seen    BIGINT  NOT NULL,
    modseq  BIGINT  NOT NULL,
    PRIMARY KEY (run_id, seq, reader),
    FOREIGN KEY (run_id, seq) REFERENCES import_staged (run_id, seq) ON DELETE CASCADE
);
