-- `mssante migrate` (ADR 0032): which message of another operator's IMAP server became which
-- message here, so that a re-run copies only what is new. Keyed by the source folder's name
-- and UIDVALIDITY and the source UID (RFC 9051 §2.3.1.1: together they name one message for
-- good); `sha256` and `size` are those of the bytes fetched from the source, for the
-- verification report. Keep in step with migrations/postgres/0022_migration.sql.
CREATE TABLE migrated_messages (
    bal_id          BIGINT  NOT NULL REFERENCES bals(id) ON DELETE CASCADE,
    source_folder   TEXT    NOT NULL,               -- the source's name, decoded to UTF-8
    uidvalidity     BIGINT  NOT NULL,               -- the source folder's UIDVALIDITY
    source_uid      BIGINT  NOT NULL,
    mailbox_id      BIGINT  NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid             BIGINT  NOT NULL,               -- the copy's UID in mailbox_id
    sha256          TEXT    NOT NULL,
    size            BIGINT  NOT NULL,
    migrated_at     BIGINT  NOT NULL,
    PRIMARY KEY (bal_id, source_folder, uidvalidity, source_uid)
);
