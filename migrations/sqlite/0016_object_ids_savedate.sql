-- IMAP OBJECTID (RFC 8474) and SAVEDATE (RFC 8514). Keep in step with the other engine's
-- 0016_object_ids_savedate.sql.

-- RFC 8514: when a message was put in its mailbox (APPEND, delivery, COPY, MOVE); NULL for
-- messages stored before this migration (SAVEDATE answers NIL for them).
ALTER TABLE mailbox_messages ADD COLUMN saved_at BIGINT;

-- RFC 8474 §4.1: MAILBOXID must survive RENAME and never be given to another mailbox. The
-- UIDVALIDITY a mailbox was created with does both: the counter never repeats, and RENAME
-- changes `uidvalidity`, not this.
ALTER TABLE mailboxes ADD COLUMN created_uidvalidity BIGINT;
UPDATE mailboxes SET created_uidvalidity = uidvalidity;
