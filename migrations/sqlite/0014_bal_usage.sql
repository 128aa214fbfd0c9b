-- A BAL's storage usage kept as a running counter (docs/limits.md): the bytes of its messages
-- across its folders, kept by triggers on mailbox_messages so that every path that adds,
-- removes or moves a message (delivery, APPEND, COPY, MOVE, EXPUNGE, folder deletion,
-- restore) keeps it exact without summing a mailbox at each RCPT or GETQUOTA.
ALTER TABLE bals ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE bals SET used_bytes = (
    SELECT COALESCE(SUM(msg.size), 0)
    FROM mailboxes f
    JOIN mailbox_messages mm ON mm.mailbox_id = f.id
    JOIN messages msg ON msg.id = mm.message_id
    WHERE f.bal_id = bals.id
);

CREATE TRIGGER mailbox_messages_usage_insert AFTER INSERT ON mailbox_messages
BEGIN
    UPDATE bals SET used_bytes = used_bytes + (SELECT size FROM messages WHERE id = NEW.message_id)
    WHERE id = (SELECT bal_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;

CREATE TRIGGER mailbox_messages_usage_delete AFTER DELETE ON mailbox_messages
BEGIN
    UPDATE bals SET used_bytes = used_bytes - (SELECT size FROM messages WHERE id = OLD.message_id)
    WHERE id = (SELECT bal_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;

CREATE TRIGGER mailbox_messages_usage_update AFTER UPDATE OF mailbox_id, message_id ON mailbox_messages
BEGIN
    UPDATE bals SET used_bytes = used_bytes - (SELECT size FROM messages WHERE id = OLD.message_id)
    WHERE id = (SELECT bal_id FROM mailboxes WHERE id = OLD.mailbox_id);
    UPDATE bals SET used_bytes = used_bytes + (SELECT size FROM messages WHERE id = NEW.message_id)
    WHERE id = (SELECT bal_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
