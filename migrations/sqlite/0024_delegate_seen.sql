-- Per-user \Seen of delegates (ADR 0034, RFC 4314 §4): a delegate reading the BAL of a
-- doctor has a read state of their own; the shared `flags` column keeps the holder's.
-- One row per (message in a folder, delegate) once the delegate's \Seen was set or cleared;
-- no row is "not seen". `modseq` is the folder modseq the change took (RFC 7162): the
-- message's modseq as that delegate sees it is the larger of this and the shared one.
-- The rows go with their message (EXPUNGE, MOVE's removal, folder and BAL removal) by the
-- cascade; COPY copies them. Keep in step with migrations/postgres/0024_delegate_seen.sql.
CREATE TABLE delegate_seen (
    mailbox_id  BIGINT  NOT NULL,
    uid         BIGINT  NOT NULL,
    reader      TEXT    NOT NULL,
    seen        BIGINT  NOT NULL,
    modseq      BIGINT  NOT NULL,
    PRIMARY KEY (mailbox_id, uid, reader),
    FOREIGN KEY (mailbox_id, uid) REFERENCES mailbox_messages (mailbox_id, uid)
        ON DELETE CASCADE ON UPDATE CASCADE
);
